// Command standin stands in for the Sunshine binary in loco's tests
// (Sunshine is not packaged in Debian): it takes the same command lines
// the plugin gives Sunshine (`CONF --creds USER PASS`, then `CONF`), reads
// the same sunshine.conf, refuses to run without an X display it can
// reach (as Sunshine's X11 capture does), and serves the two API calls the
// plugin makes, GET /api/apps and POST /api/pin, over HTTPS on port+1 with
// the configured certificate and credentials. It streams nothing. PINs it
// is given are appended to <conf dir>/standin-pins.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func readConf(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	conf := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			conf[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return conf, sc.Err()
}

func run(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: standin CONF [--creds USER PASS]")
	}
	conf, err := readConf(args[0])
	if err != nil {
		return err
	}
	if len(args) == 4 && args[1] == "--creds" {
		b, _ := json.Marshal(map[string]string{"username": args[2], "password": args[3]})
		return os.WriteFile(conf["file_state"], b, 0o600)
	}
	disp := os.Getenv("DISPLAY")
	if _, err := net.Dial("unix", "/tmp/.X11-unix/X"+strings.TrimPrefix(disp, ":")); disp == "" || err != nil {
		return fmt.Errorf("no X display to capture (DISPLAY=%q): %v", disp, err)
	}
	var creds struct{ Username, Password string }
	b, err := os.ReadFile(conf["file_state"])
	if err != nil {
		return err
	}
	json.Unmarshal(b, &creds)
	port, err := strconv.Atoi(conf["port"])
	if err != nil {
		return fmt.Errorf("port: %w", err)
	}
	fmt.Printf("standin for Sunshine %q on display %s, port %d\n", conf["sunshine_name"], disp, port)
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != creds.Username || p != creds.Password {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/apps", authed(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(conf["file_apps"])
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	}))
	mux.HandleFunc("POST /api/pin", authed(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ PIN, Name string }
		json.NewDecoder(r.Body).Decode(&req)
		f, err := os.OpenFile(filepath.Join(filepath.Dir(args[0]), "standin-pins"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%s %s\n", req.PIN, req.Name)
			f.Close()
		}
		fmt.Fprintf(w, `{"status": %q}`, strconv.FormatBool(req.PIN != "0000"))
	}))
	// Sunshine's HTTP port, held so that a clash shows like Sunshine's would.
	http0, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	go http.Serve(http0, http.NotFoundHandler())
	return http.ListenAndServeTLS(fmt.Sprintf("127.0.0.1:%d", port+1), conf["cert"], conf["pkey"], mux)
}
