package token_test

import (
	"errors"
	"fmt"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

func Example() {
	f := token.Format{Base: token.DefaultBase}

	// The controller issues a value, stores its hash and shows its prefix.
	value, err := f.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		panic(err)
	}
	digest, shown := token.Hash(value), token.DisplayPrefix(value)
	fmt.Println(len(value), len(digest), len(shown))

	// The verifier refuses garbage before any lookup, then compares hashes.
	typ, err := f.Parse(value)
	fmt.Println(typ, err, token.HashMatches(value, digest))

	mistyped := value[:len(value)-1] + "!"
	_, err = f.Parse(mistyped)
	fmt.Println(errors.Is(err, token.ErrMalformed), err)
	// Output:
	// 53 71 8
	// Team <nil> true
	// true token: malformed value: character outside [0-9A-Za-z]
}

func ExampleFormat_Prefix() {
	fmt.Println(token.Format{}.Prefix(v1alpha1.AdminTokenType))
	fmt.Println(token.Format{Base: "acme"}.Prefix(v1alpha1.WildcardTokenType))
	// Output:
	// twa_
	// acmew_
}
