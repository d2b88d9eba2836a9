# Nine Windows 98 guests for a Lego Loco LAN party, in a 3x3 grid.
#
# Bring your own Windows 98 disk with Lego Loco installed (see
# images/win98/ when it lands); loco never ships one:
#   loco run --var win98_disk=/path/to/win98.qcow2 configs/lego-loco.hcl
#
# Network, stream and input plugins are added to this file as they land
# (see the README's "Not built yet").

variable "win98_disk" {
  type        = string
  description = "Path to your Windows 98 base disk (qcow2 or raw). It is never written to."
}

variable "players" {
  type    = number
  default = 9
}

cluster "lego-loco" {
  instances = var.players

  image {
    disk       = var.win98_disk
    min_memory = 32
  }

  guest {
    machine        = "pc"   # i440FX: what Windows 98 knows
    cpus           = 1
    memory         = 128
    nic            = "ne2k_pci" # Windows 98 has drivers for ne2k_pci, pcnet, rtl8139
    vga            = "cirrus"   # Windows 98 drives the Cirrus 5446 at 800x600x16
    audio          = "sb16"
    disk_interface = "ide"
    accel          = "auto"
  }

  runtime "process" {
    stop_grace = "60s" # Windows 98 takes its time to shut down
  }

  # One Ethernet segment for all players: IPX and broadcasts pass, and DHCP
  # gives player N the address 10.87.0.(10+N). Use dhcp = false if your
  # Windows 98 disk has static addresses.
  network "socket" {}

  # Keyboard, mouse and screenshots through QMP (the API and `loco mcp`).
  # Windows 98 drives the PS/2 mouse (relative motion) out of the box; its
  # USB tablet support is poor, so leave the guest's pointer at "ps2" and
  # move the mouse with relative motion, not absolute positions.
  input "qmp" {}

  # The 3x3 dashboard: each player's screen (Windows 98's 800x600) and sb16
  # sound over WebRTC, at the API address with ?token=TOKEN. Click a tile to
  # play that guest; Windows 98's PS/2 mouse needs relative motion, so press
  # "lock mouse" (pointer lock) on the focused tile. Remote players: set
  # public_ip = "A.B.C.D" (and open udp_ports) or add ice_server blocks.
  stream "webrtc" {}

  api {
    listen = "127.0.0.1:7780"
  }
}
