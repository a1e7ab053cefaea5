module github.com/lomond-go/lomond

go 1.23.0

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/coder/websocket v1.8.15
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.43.0
)

require golang.org/x/text v0.28.0 // indirect
