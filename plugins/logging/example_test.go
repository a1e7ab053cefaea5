package logging_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/plugins/logging"
)

// echoServer is a websocket echo server on 127.0.0.1.
func echoServer() (url string, stop func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, data); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

// oneEcho sends one message and closes when its echo is back.
type oneEcho struct{ lomond.BaseHandler }

func (oneEcho) OnReady(ws *lomond.WebSocket, _ *events.Ready) { _ = ws.SendText("hello") }

func (oneEcho) OnText(ws *lomond.WebSocket, _ *events.Text) {
	_ = ws.Close(lomond.StatusNormal, "done")
}

// The plugin logs a session: the lifecycle at Info, messages at Debug with
// their size, the token in the URL redacted. (The example drops the time
// and the session's length, and names the server's changing address
// "server".)
func Example() {
	url, stop := echoServer()
	defer stop()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "session":
				return slog.Attr{}
			case "url":
				return slog.String("url", strings.Replace(a.Value.String(), url, "ws://server", 1))
			}
			return a
		},
	}))
	ws, err := lomond.New(url+"?token=s3cr3t-t0ken", lomond.WithoutProxy(),
		lomond.WithPollInterval(0), lomond.WithPingRate(0),
		lomond.WithPlugins(logging.New(logger)))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ws.Run(ctx, oneEcho{})
	// Output:
	// level=INFO msg="websocket connecting" event=connecting url="ws://server/?token=REDACTED"
	// level=INFO msg="websocket connected" event=connected url="ws://server/?token=REDACTED"
	// level=INFO msg="websocket ready" event=ready url="ws://server/?token=REDACTED"
	// level=DEBUG msg="websocket sent" event=send url="ws://server/?token=REDACTED" type=text size=5 result=sent
	// level=DEBUG msg="websocket text received" event=text url="ws://server/?token=REDACTED" size=5
	// level=DEBUG msg="websocket sent" event=send url="ws://server/?token=REDACTED" type=close size=6 result=sent code=1000 reason=done
	// level=INFO msg="websocket closed" event=closed url="ws://server/?token=REDACTED" code=1000 reason=done
	// level=INFO msg="websocket disconnected" event=disconnected url="ws://server/?token=REDACTED" reason=closed graceful=true
}
