package policy

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// Files are the texts of one policy version: the Casbin model, the policy
// lines and, optionally, the policy's own test cases, which must pass
// before the policy is put in force.
type Files struct {
	// The paths name the files in messages; CasesPath "" means no cases.
	ModelPath, PolicyPath, CasesPath string
	Model, Policy, Cases             []byte
}

// maxFileBytes bounds each policy file.
const maxFileBytes = 4 << 20

// ReadFiles reads a policy's files; casesPath may be "".
func ReadFiles(modelPath, policyPath, casesPath string) (Files, error) {
	f := Files{ModelPath: modelPath, PolicyPath: policyPath, CasesPath: casesPath}
	var err error
	if f.Model, err = readFile(modelPath); err != nil {
		return f, err
	}
	if f.Policy, err = readFile(policyPath); err != nil {
		return f, err
	}
	if casesPath != "" {
		if f.Cases, err = readFile(casesPath); err != nil {
			return f, err
		}
	}
	return f, nil
}

func readFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidPolicy, path, maxFileBytes)
	}
	return data, nil
}

func (f *Files) modelName() string {
	if f.ModelPath == "" {
		return "model"
	}
	return f.ModelPath
}

func (f *Files) policyName() string {
	if f.PolicyPath == "" {
		return "policy"
	}
	return f.PolicyPath
}

// hash identifies the content of all three files, to notice any change.
func (f *Files) hash() [32]byte {
	h := sha256.New()
	for _, b := range [][]byte{f.Model, f.Policy, f.Cases} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
