package qmpinput

import "github.com/locolan/loco/sdk"

// qmpEvent is one QMP InputEvent, e.g.
// {"type":"key","data":{"down":true,"key":{"type":"qcode","data":"a"}}}.
type qmpEvent struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

type qmpKey struct {
	Down bool `json:"down"`
	Key  struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"key"`
}

type qmpButton struct {
	Button string `json:"button"`
	Down   bool   `json:"down"`
}

type qmpAxis struct {
	Axis  string `json:"axis"`
	Value int32  `json:"value"`
}

// toQMP turns one validated event into the input-send-event commands that
// deliver it. Each command ends in one sync in QEMU, so what must reach
// the guest as one report (both axes of a motion) shares a command, and a
// wheel notch, which QEMU models as a button press and release, gets one of
// its own.
func toQMP(e sdk.InputEvent) [][]qmpEvent {
	switch {
	case e.Key != nil:
		k := qmpKey{Down: e.Key.Down}
		k.Key.Type, k.Key.Data = "qcode", e.Key.QCode
		return [][]qmpEvent{{{"key", k}}}
	case e.Rel != nil:
		return [][]qmpEvent{{{"rel", qmpAxis{"x", e.Rel.DX}}, {"rel", qmpAxis{"y", e.Rel.DY}}}}
	case e.Abs != nil:
		return [][]qmpEvent{{{"abs", qmpAxis{"x", e.Abs.X}}, {"abs", qmpAxis{"y", e.Abs.Y}}}}
	case e.Button != nil:
		return [][]qmpEvent{{{"btn", qmpButton{e.Button.Button, e.Button.Down}}}}
	case e.Wheel != nil:
		b, n := "wheel-up", e.Wheel.Delta
		if n < 0 {
			b, n = "wheel-down", -n
		}
		out := make([][]qmpEvent, n)
		for i := range out {
			out[i] = []qmpEvent{{"btn", qmpButton{b, true}}, {"btn", qmpButton{b, false}}}
		}
		return out
	}
	return nil
}
