cluster "lan" {
  instances = 3

  image {
    kernel     = "vmlinuz"
    initrd     = "initrd.img"
    disk       = "base.qcow2"
    append     = "quiet"
    min_memory = 96
  }

  guest {
    memory = 128
    nic    = "ne2k_pci"
  }

  instance "2" {
    memory = 256
    audio  = "sb16"
    vga    = "cirrus"
  }
}
