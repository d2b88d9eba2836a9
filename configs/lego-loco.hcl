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

  api {
    listen = "127.0.0.1:7780"
  }
}
