# A Lego Loco network game: player 0 hosts, two others join, the game
# starts. It needs YOUR Windows 98 disk with Lego Loco installed
# (images/win98/README.md); nothing here can run it without that disk, and
# its screen positions and colours are Lego Loco's 800x600 screens as the
# game draws them, to check against your own install (take screenshots with
# `loco scenario run` or GET /api/instances/N/screenshot and adjust). The
# test guest's stand-in is configs/lan-game.scenario.hcl, same format.
#   loco scenario run --var win98_disk=win98-loco.qcow2 --var players=3 configs/lego-loco.scenario.hcl

scenario "lego-loco" {
  spec    = "lego-loco.hcl"
  timeout = "5m" # Windows 98 boots in 1-3 minutes under TCG

  step "desktop" { # Windows 98's teal desktop, on every player
    guests = [0, 1, 2]
    screen {
      region = [300, 200, 200, 100]
      color  = "#008080"
    }
  }

  step "start-loco" { # Start, Run..., the game's launcher
    guests = [0, 1, 2]
    keys   = ["meta_l", "r"]
    type   = "C:\\Program Files\\LEGO Media\\LEGO LOCO\\Exe\\loco.exe\n"
    screen { # the title screen's black border
      region = [0, 0, 800, 20]
      color  = "#000000"
    }
  }

  step "host" { # player 0: Network game, Host (DirectPlay TCP/IP: UDP 47624, TCP 2300)
    guests = [0]
    keys   = ["n", "h", "ret"]
    screen {
      region = [250, 250, 300, 40]
      color  = "#ffff00"
      min_fraction = 0.5
    }
  }

  step "join" { # the others: Network game, Join, the first session listed
    guests = [1, 2]
    keys   = ["n", "j", "ret"]
    screen {
      region = [250, 250, 300, 40]
      color  = "#ffff00"
      min_fraction = 0.5
    }
  }

  step "start" { # the host starts the game once everyone is in
    guests = [0]
    keys   = ["ret"]
    screen { # the town map's green grass
      region = [100, 100, 600, 400]
      color  = "#30a030"
      tolerance    = 48
      min_fraction = 0.3
    }
  }
}
