package main

import (
	"os"
	"testing"

	"github.com/locolan/loco/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
