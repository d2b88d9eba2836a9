package proc

import (
	"os"
	"os/exec"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, line string
		want       Stat
		wantErr    bool
	}{
		{"plain", "42 (qemu) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 1000 777 18446744073709551615",
			Stat{State: "S", UTime: 250, STime: 50, StartTick: 12345, RSSPages: 777}, false},
		{"name with spaces and parens", "7 (a (b) c) Z 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 99 0 5 0",
			Stat{State: "Z", UTime: 1, STime: 2, StartTick: 99, RSSPages: 5}, false},
		{"short", "7 (x) S 1 2", Stat{}, true},
		{"no name", "garbage", Stat{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(1, tc.line)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %+v, %v; want %+v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestAliveAndZombie(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Until Wait reaps it, the exited child is a zombie: not alive.
	for i := 0; i < 200 && Alive(pid); i++ {
		exec.Command("sleep", "0.01").Run()
	}
	if Alive(pid) {
		t.Error("an exited, unreaped child counts as alive")
	}
	cmd.Wait()
	if Alive(pid) || Alive(0) || Alive(-1) {
		t.Error("a gone process counts as alive")
	}
	st, err := Read(os.Getpid())
	if err != nil || st.RSSBytes() <= 0 || st.StartTick == 0 {
		t.Errorf("own stat %+v, %v", st, err)
	}
}
