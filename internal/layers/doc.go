// Package layers holds no code: its test checks that the imports between
// proctrack's packages run one way, down the table of ARCHITECTURE.md.
package layers
