package node

import (
	"os"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode) // gin's mode is a package global: no debug banner per agent
	os.Exit(m.Run())
}
