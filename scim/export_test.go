package scim

// SetMaxListedMembers lowers the member references one Groups list answer
// may carry, so that a test reaches the bound with a few members.
func SetMaxListedMembers(s *Server, n int) { s.maxMembers = n }
