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
  }

  guest {
    cpus   = 1
    memory = 128
    nic    = "e1000"
    accel  = "auto" # KVM only where a probe guest really runs under it
  }

  runtime "process" {
    stop_grace = "10s"
  }

  api {
    listen = "127.0.0.1:7780"
  }
}
