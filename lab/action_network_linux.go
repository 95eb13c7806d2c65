package lab

import (
	"context"
	"fmt"

	"github.com/ctlab/ctlab/sandbox"
)

// LinkAction gives a container a veth pair to the host (the container must
// have a net namespace); the address is read back by link_has_address.
type LinkAction struct {
	In string `yaml:"in" json:"in"`
}

func (a *LinkAction) validate(v *validator) { v.running(a.In) }

func (a *LinkAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	c, err := e.running(a.In)
	if err != nil {
		return "", nil, err
	}
	att, err := sandbox.LinkContainer(ctx, c)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%+v", *att), nil, nil
}
