package authz

import (
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// CreatorOf reads the creator recorded on obj by the admission webhook. It
// returns nil and no error when there is none.
func CreatorOf(obj metav1.Object) (*v1alpha1.UserIdentity, error) {
	raw, ok := obj.GetAnnotations()[v1alpha1.CreatorAnnotation]
	if !ok {
		return nil, nil
	}
	creator := &v1alpha1.UserIdentity{}
	if err := json.Unmarshal([]byte(raw), creator); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON user identity: %w", v1alpha1.CreatorAnnotation, err)
	}
	if creator.Username == "" {
		return nil, errors.New("annotation " + v1alpha1.CreatorAnnotation + " has no username")
	}
	return creator, nil
}

// CreatorAnnotationValue encodes user for the creator annotation.
func CreatorAnnotationValue(user *v1alpha1.UserIdentity) (string, error) {
	data, err := json.Marshal(user)
	return string(data), err
}

// OwnerKeys are the index keys under which user may be found among Team
// owners: its user name and each of its groups. A ServiceAccount owner is
// found by its system:serviceaccount user name.
func OwnerKeys(user *v1alpha1.UserIdentity) []string {
	if user == nil {
		return nil
	}
	keys := make([]string, 0, 1+len(user.Groups))
	keys = append(keys, "user:"+user.Username)
	for _, g := range user.Groups {
		keys = append(keys, "group:"+g)
	}
	return keys
}

// SubjectKey is the index key of a Team owner, matching OwnerKeys.
func SubjectKey(subject v1alpha1.Subject) string {
	switch subject.Kind {
	case v1alpha1.GroupSubject:
		return "group:" + subject.Name
	case v1alpha1.ServiceAccountSubject:
		return "user:" + ServiceAccountPrefix + subject.Namespace + ":" + subject.Name
	}
	return "user:" + subject.Name
}
