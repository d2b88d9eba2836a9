variable "guests" {
  type    = number
  default = 3
}

variable "nic" {
  type    = string
  default = "ne2k_pci"
}

cluster "lan" {
  instances = var.guests
  state_dir = "state"

  image {
    kernel     = "vmlinuz"
    initrd     = "initrd.img"
    disk       = "base.qcow2"
    append     = "quiet"
    min_memory = 96
  }

  guest {
    cpus   = 1
    memory = 128
    nic    = var.nic
    accel  = "tcg"
  }

  instance "2" {
    memory     = 256
    audio      = "sb16"
    start_from = "party"
  }

  runtime "process" {
    stop_grace    = "5s"
    restart_limit = 3
  }

  network "socket" {
    subnet = "10.0.2.0/24"
  }

  input "qmp" {}

  plugin "network-socket" {
    path   = "bin/loco-plugin-network-socket"
    sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
  }

  api {
    listen = "127.0.0.1:9999"
    token  = "0123456789abcdef0123"
  }
}
