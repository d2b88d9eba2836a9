cluster "lan" {
  instances = 3

  image {
    kernel     = "vmlinuz"
    initrd     = "initrd.img"
    disk       = "base.qcow2"
    min_memory = 96
  }

  guest {
    memory = 128
    nic    = "ne2k_pci"
  }

  instance "2" {
    memory = 256
  }

  runtime "kubernetes" {
    namespace     = "games"
    base_volume   = "pvc:loco-base"
    storage_class = "fast"
    overlay_size  = "4Gi"
    kvm           = "device-plugin"
    stop_grace    = "20s"
  }
}
