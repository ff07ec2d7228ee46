package scim

import "context"

// OperationMeter records one SCIM write for billing; package usage
// implements it. SCIMOperation runs inside the write's transaction, with
// the tenant in ctx.
type OperationMeter interface {
	SCIMOperation(ctx context.Context, op string) error
}

// writeTx runs a write in one transaction and meters it there, so that the
// usage record exists exactly when the write does.
func (s *Server) writeTx(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return err
		}
		if s.usage == nil {
			return nil
		}
		return s.usage.SCIMOperation(ctx, op)
	})
}
