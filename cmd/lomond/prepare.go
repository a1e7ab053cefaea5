package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/lomond-go/lomond"
)

// prepared is the command line turned into what the library takes.
type prepared struct {
	url   string // the websocket URL for lomond.New, without credentials
	opts  []lomond.Option
	sends [][]byte // --send payloads, decoded for --binary=hex
	sc    *scrubber
}

// prepare maps the flags onto lomond options and records every secret the
// command line holds. Errors wrap errUsage and never quote a secret.
func prepare(s *settings, getenv func(string) string) (*prepared, error) {
	sc := &scrubber{}
	p := &prepared{sc: sc}
	sc.addURL(s.url)

	u, err := url.Parse(s.url)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error quotes the URL, credentials and all
		}
		return nil, usageErr("invalid URL: %v", err)
	}
	authorization := false
	for _, h := range s.headers {
		name, value, err := splitHeader(h)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		sc.addHeader(name, value)
		switch http.CanonicalHeaderKey(name) {
		case "User-Agent":
			p.opts = append(p.opts, lomond.WithUserAgent(value))
			continue
		case "Sec-Websocket-Protocol":
			return nil, usageErr("-H %s: use --protocol", name)
		case "Sec-Websocket-Extensions":
			return nil, usageErr("-H %s: use --compress", name)
		case "Authorization":
			authorization = true
		}
		p.opts = append(p.opts, lomond.WithHeader(name, value))
	}
	if u.User != nil {
		// Credentials in the URL become Basic authentication, as with curl;
		// the library itself refuses them, so that none is sent by mistake.
		if authorization {
			return nil, usageErr("credentials both in the URL and in an Authorization header")
		}
		pass, _ := u.User.Password()
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
		sc.addHeader("Authorization", basic)
		p.opts = append(p.opts, lomond.WithHeader("Authorization", basic))
		u.User = nil
	}
	p.url = u.String()

	var protocols []string
	for _, list := range s.protocols {
		for _, name := range strings.Split(list, ",") {
			if name = strings.TrimSpace(name); name != "" {
				protocols = append(protocols, name)
			}
		}
	}
	if len(protocols) > 0 {
		p.opts = append(p.opts, lomond.WithProtocols(protocols...))
	}
	if s.origin != "" {
		p.opts = append(p.opts, lomond.WithOrigin(s.origin))
	}
	if s.compress {
		// One connection: the fixed cost of context takeover buys the
		// better ratio.
		p.opts = append(p.opts, lomond.WithCompression(lomond.CompressionContextTakeover))
	}

	for _, name := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		if v := getenv(name); v != "" {
			sc.addURL(withScheme(v))
		}
	}
	switch {
	case s.proxy != "":
		sc.addURL(withScheme(s.proxy))
		p.opts = append(p.opts, lomond.WithProxy(s.proxy))
	case s.noProxy:
		p.opts = append(p.opts, lomond.WithoutProxy())
	}
	if s.caFile != "" {
		p.opts = append(p.opts, lomond.WithCAFile(s.caFile))
	}
	if s.insecure {
		p.opts = append(p.opts, lomond.WithInsecureSkipVerify())
	}

	readLimit := s.readLimit
	if readLimit == 0 {
		readLimit = lomond.NoReadLimit
	}
	p.opts = append(p.opts,
		lomond.WithDialTimeout(s.connectTimeout),
		lomond.WithHandshakeTimeout(s.handshakeTimeout),
		lomond.WithPingRate(s.pingInterval),
		lomond.WithPingTimeout(s.pingTimeout),
		lomond.WithCloseTimeout(s.closeTimeout),
		lomond.WithPollInterval(s.poll),
		lomond.WithReadLimit(readLimit),
	)

	for i, msg := range s.sends {
		data := []byte(msg)
		if s.binary == binaryHex {
			if data, err = decodeHex(msg); err != nil {
				return nil, usageErr("--send #%d: %v", i+1, err)
			}
		}
		p.sends = append(p.sends, data)
	}
	return p, nil
}

// withScheme gives a bare proxy address ("user:pass@host:3128") the http://
// scheme the library assumes, so that it parses as a URL.
func withScheme(proxy string) string {
	if strings.Contains(proxy, "://") {
		return proxy
	}
	return "http://" + proxy
}

// decodeHex reads "deadbeef", "de ad be ef" or "de:ad:be:ef".
func decodeHex(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', ':', '\r':
			return -1
		}
		return r
	}, s)
	clean = strings.TrimPrefix(strings.TrimPrefix(clean, "0x"), "0X")
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("not hex (want bytes like \"de ad be ef\"): %v", err)
	}
	return b, nil
}
