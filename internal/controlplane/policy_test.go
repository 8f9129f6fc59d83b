package controlplane

import (
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/tokenwarden/tokenwarden/config/policy"
)

// TestStatusPolicyOverridesOnlyTheOperator: the local mode and the test
// control plane must enforce exactly what kustomize ships, but for whom.
func TestStatusPolicyOverridesOnlyTheOperator(t *testing.T) {
	for _, operator := range []string{"admin", "system:serviceaccount:ns:sa", `it's "quoted" \ too`} {
		t.Run(operator, func(t *testing.T) {
			g := NewWithT(t)
			vap, binding, err := StatusPolicy(operator)
			g.Expect(err).NotTo(HaveOccurred())

			var docs [][]byte
			g.Expect(eachDocument(policy.StatusWriters, func(doc []byte) error {
				docs = append(docs, doc)
				return nil
			})).To(Succeed())
			g.Expect(docs).To(HaveLen(2))
			shipped := &admissionregistrationv1.ValidatingAdmissionPolicy{}
			g.Expect(yaml.UnmarshalStrict(docs[0], shipped)).To(Succeed())
			g.Expect(shipped.Spec.Variables).To(ContainElement(HaveField("Name", OperatorVariable)))
			var literal string
			for i := range shipped.Spec.Variables {
				if shipped.Spec.Variables[i].Name == OperatorVariable {
					g.Expect(shipped.Spec.Variables[i].Expression).NotTo(Equal(vap.Spec.Variables[i].Expression))
					shipped.Spec.Variables[i].Expression = vap.Spec.Variables[i].Expression
					literal, err = strconv.Unquote(vap.Spec.Variables[i].Expression)
					g.Expect(err).NotTo(HaveOccurred(), "the operator must be one string literal")
				}
			}
			g.Expect(literal).To(Equal(operator))
			g.Expect(vap).To(Equal(shipped), "only the operator variable may differ from config/policy")

			g.Expect(binding.Spec.PolicyName).To(Equal(vap.Name))
			g.Expect(binding.Spec.ValidationActions).To(Equal([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}))
		})
	}
}
