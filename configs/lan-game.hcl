# Three test guests on Lego Loco's hardware (configs/lego-loco.hcl's guest
# block) playing the test agent's stand-in LAN game, for
# configs/lan-game.scenario.hcl:
#   make testguest && loco scenario run configs/lan-game.scenario.hcl

variable "accel" {
  type    = string
  default = "auto"
}

cluster "lan-game" {
  instances = 3

  image {
    kernel     = "../build/testguest/vmlinuz"
    initrd     = "../build/testguest/initrd.img"
    disk       = "../build/testguest/base.qcow2"
    min_memory = 96
    append     = "vga=0x315" # 800x600, the framebuffer the game panel is drawn on
  }

  guest {
    machine        = "pc"
    cpus           = 1
    memory         = 128
    nic            = "ne2k_pci"
    vga            = "cirrus"
    audio          = "sb16"
    disk_interface = "ide"
    accel          = var.accel
  }

  runtime "process" {
    stop_grace = "5s"
  }

  network "socket" {}
  input "qmp" {}

  api {
    listen = "127.0.0.1:0"
  }
}
