package main

import (
	"errors"
	"fmt"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/bridge"
)

// adminBridges adapts the bridge manager to the admin API.
type adminBridges struct{ m *bridge.Manager }

func (a adminBridges) BridgeInfos() []admin.BridgeInfo {
	list := a.m.Bridges()
	out := make([]admin.BridgeInfo, len(list))
	for i, in := range list {
		out[i] = admin.BridgeInfo{Name: in.Name, State: string(in.State), Address: in.Address, Queued: in.Queued,
			Sent: in.Sent, Received: in.Received, Dropped: in.Dropped, Connects: in.Connects}
	}
	return out
}

func (a adminBridges) RestartBridge(name string) error {
	err := a.m.Restart(name)
	if errors.Is(err, bridge.ErrUnknownBridge) {
		return fmt.Errorf("%w: %q", admin.ErrNoBridge, name)
	}
	return err
}
