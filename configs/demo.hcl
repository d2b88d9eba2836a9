# The demo cluster: three tiny Linux test guests (built from Debian packages
# by `make testguest`) on one LAN. `make run` boots it.

variable "guests" {
  type        = number
  default     = 3
  description = "How many guests to boot."
}

cluster "demo" {
  instances = var.guests

  image {
    kernel     = "../build/testguest/vmlinuz"
    initrd     = "../build/testguest/initrd.img"
    disk       = "../build/testguest/base.qcow2"
    min_memory = 96
    append     = "vga=0x315" # an 800x600 console, the size Windows 98 guests use
  }

  guest {
    cpus   = 1
    memory = 128
    nic    = "e1000"
    audio  = "ac97" # the test guest beeps on F11 (Windows 98 uses sb16)
    accel  = "auto" # KVM only where a probe guest really runs under it
  }

  runtime "process" {
    stop_grace = "10s"
  }

  # The LAN: a switch with DHCP (guest N gets 10.87.0.(10+N)), a prober and
  # capture. See `loco lan status` and `loco lan capture`.
  network "socket" {}

  # Keyboard, mouse and screenshots for programs: the API's /input, /type,
  # /screenshot and input WebSocket, and `loco mcp` for AI agents.
  input "qmp" {}

  # Every guest's screen and sound in the browser: open the API address
  # with ?token=TOKEN (both printed by loco run) for the dashboard.
  stream "webrtc" {}

  api {
    listen = "127.0.0.1:7780"
  }
}
