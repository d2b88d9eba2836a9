# A LAN session with the test guest's stand-in game (images/testguest's
# agent, keys F5/F6/F7; DirectPlay's ports: sessions announced by broadcast
# to UDP 47624, players join on TCP 2300). docs/scenario.md.
#   loco scenario run configs/lan-game.scenario.hcl
#
# The game panel is the 800x600 screen's bottom-left 240x80 pixels: green
# while hosting, yellow once a session was heard, blue once joined; a white
# 20x20 square per player at x = 10 + 30*i, y = 550.

scenario "lan-game" {
  spec    = "lan-game.hcl"
  timeout = "3m" # per step; TCG guests on busy cores boot in 10-40 s

  step "ready" { # booted, leased, keyboard, mouse and power button opened
    guests       = [0, 1, 2]
    console_seen = ["LOCO-DHCP name=lan-game-\\d ip=", "input event0 opened", "input event1 opened", "input event2 opened"]
  }

  step "host" {
    guests  = [0]
    keys    = ["f5"]
    console = "LOCO-GAME hosting name=lan-game-0"
    screen {
      region = [20, 525, 200, 20]
      color  = "#00c800"
    }
  }

  step "list" {
    guests  = [1, 2]
    keys    = ["f6"]
    console = "LOCO-GAME session host=lan-game-0"
    screen {
      region = [20, 525, 200, 20]
      color  = "#dcc800"
    }
  }

  step "join" {
    guests  = [1, 2]
    keys    = ["f7"]
    console = "LOCO-GAME joined host=lan-game-0"
    screen {
      region = [20, 525, 200, 20]
      color  = "#0000dc"
    }
  }

  step "players" {
    guests = [0]
    screen { # the third player's square on the host
      region = [70, 550, 20, 20]
      color  = "#ffffff"
    }
    screen { # and no fourth
      region = [100, 550, 20, 20]
      color  = "#00c800"
    }
  }
}
