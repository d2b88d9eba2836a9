package client

// Event is one input event as the API takes it (docs/api.md, "Events"):
// exactly one field set. The constructors below make each kind.
type Event struct {
	Key    any       `json:"key,omitempty"` // a name ("f10": press and release) or a KeyState
	Chord  []string  `json:"chord,omitempty"`
	Text   *string   `json:"text,omitempty"`
	Rel    *XY       `json:"rel,omitempty"`
	Abs    *AbsXY    `json:"abs,omitempty"`
	Button *ButtonUD `json:"button,omitempty"`
	Wheel  *Delta    `json:"wheel,omitempty"`
}

// KeyState is a key going down or up.
type KeyState struct {
	QCode string `json:"qcode"`
	Down  bool   `json:"down"`
}

// XY is relative motion.
type XY struct {
	DX int `json:"dx"`
	DY int `json:"dy"`
}

// AbsXY is an absolute position, 0..32767 on each axis.
type AbsXY struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// ButtonUD is a mouse button going down or up.
type ButtonUD struct {
	Button string `json:"button"`
	Down   bool   `json:"down"`
}

// Delta is a wheel turn in notches.
type Delta struct {
	Delta int `json:"delta"`
}

// Press presses and releases one key.
func Press(name string) Event { return Event{Key: name} }

// KeyDown and KeyUp move one key.
func KeyDown(name string) Event { return Event{Key: KeyState{QCode: name, Down: true}} }
func KeyUp(name string) Event   { return Event{Key: KeyState{QCode: name, Down: false}} }

// Chord presses keys in order and releases them in reverse.
func Chord(keys ...string) Event { return Event{Chord: keys} }

// Text types text.
func Text(s string) Event { return Event{Text: &s} }

// Move moves the pointer by dx, dy.
func Move(dx, dy int) Event { return Event{Rel: &XY{DX: dx, DY: dy}} }

// MoveTo moves the pointer to x, y (0..32767).
func MoveTo(x, y int) Event { return Event{Abs: &AbsXY{X: x, Y: y}} }

// Button moves a mouse button ("left", "middle", "right").
func Button(name string, down bool) Event { return Event{Button: &ButtonUD{Button: name, Down: down}} }

// Wheel scrolls by delta notches, positive up.
func Wheel(delta int) Event { return Event{Wheel: &Delta{Delta: delta}} }
