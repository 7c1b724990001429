module github.com/gannet-mqtt/gannet

go 1.26.8

require github.com/spf13/cobra v1.10.2

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/eclipse/paho.mqtt.golang v1.5.1 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.17.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
