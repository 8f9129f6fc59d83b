package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/config/policy"
)

// OperatorVariable is the variable of config/policy's ValidatingAdmissionPolicy
// that holds the one username allowed to write ApiToken and Team status.
const OperatorVariable = "operator"

// statusPolicyFieldOwner owns the policy's fields in the local mode, whose
// etcd outlives a run: each start applies the policy again.
const statusPolicyFieldOwner = "tokenwarden-controlplane"

// StatusPolicy parses config/policy's ValidatingAdmissionPolicy and its
// binding, with the operator variable replaced by a CEL string literal of
// operator; everything else is as kustomize ships it. The names are the
// YAML's, without config/default's prefix, as envtest registers the webhook
// configurations, so a rendered install can be applied beside them.
func StatusPolicy(operator string) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	var (
		vap     *admissionregistrationv1.ValidatingAdmissionPolicy
		binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	)
	err := eachDocument(policy.StatusWriters, func(doc []byte) error {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return err
		}
		switch meta.Kind {
		case "ValidatingAdmissionPolicy":
			vap = &admissionregistrationv1.ValidatingAdmissionPolicy{}
			return yaml.UnmarshalStrict(doc, vap)
		case "ValidatingAdmissionPolicyBinding":
			binding = &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
			return yaml.UnmarshalStrict(doc, binding)
		}
		return fmt.Errorf("unexpected kind %q in config/policy/status_writers.yaml", meta.Kind)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading config/policy/status_writers.yaml: %w", err)
	}
	if vap == nil || binding == nil {
		return nil, nil, errors.New("config/policy/status_writers.yaml must hold a ValidatingAdmissionPolicy and its binding")
	}
	replaced := false
	for i := range vap.Spec.Variables {
		if vap.Spec.Variables[i].Name == OperatorVariable {
			// A quoted Go string is a valid CEL string literal for any
			// username, quotes and backslashes included.
			vap.Spec.Variables[i].Expression = strconv.Quote(operator)
			replaced = true
		}
	}
	if !replaced {
		return nil, nil, fmt.Errorf("policy %s has no variable %q to name the operator by", vap.Name, OperatorVariable)
	}
	return vap, binding, nil
}

// InstallStatusPolicy installs StatusPolicy naming the user cfg
// authenticates as, found by a SelfSubjectReview: whoever is handed cfg to
// run the operator is then the only one who may write status, as the
// operator's ServiceAccount is in a real install. kube-apiserver starts
// enforcing it within moments, once its policy informer has seen both
// objects.
func InstallStatusPolicy(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return fmt.Errorf("asking who the operator's configuration authenticates as: %w", err)
	}
	operator := review.Status.UserInfo.Username
	if operator == "" {
		return errors.New("the operator's configuration authenticates as no user")
	}
	vap, binding, err := StatusPolicy(operator)
	if err != nil {
		return err
	}
	for _, obj := range []client.Object{vap, binding} {
		//nolint:staticcheck // client.Apply with a typed object is the simplest idempotent create-or-update here, as in devenv.
		if err := c.Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(statusPolicyFieldOwner)); err != nil {
			return fmt.Errorf("applying %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	}
	return nil
}
