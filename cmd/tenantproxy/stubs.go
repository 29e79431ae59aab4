package main

import "github.com/spf13/cobra"

// Placeholders until each command's own file lands; delete the matching
// function here when you add its real file.

func newRewriteCmd() *cobra.Command { return &cobra.Command{Use: "rewrite"} }
