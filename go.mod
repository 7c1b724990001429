module github.com/gannet-mqtt/gannet

go 1.26.8
