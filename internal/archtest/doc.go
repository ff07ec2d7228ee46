// Package archtest holds the test that keeps the import graph in the shape
// the layout promises: the product's surfaces at the top level, the store
// at the bottom, platform code under internal/ knowing nothing of the
// product, and cmd/ as the one place that wires everything together.
//
// The rules are a table in archtest_test.go; `make test` runs them. They
// constrain the code that is built into the binary, not tests: an
// end-to-end test beside scim may well start a broker.
package archtest
