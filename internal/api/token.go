package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TokenFile is the name of the token file in the data dir.
const TokenFile = "token"

// tokenPrefix marks Vigil tokens so that they are recognisable when they leak into logs
// or a secret scanner's findings.
const tokenPrefix = "vgl_"

// tokenBytes is the token's entropy: 256 bits.
const tokenBytes = 32

// ErrBadToken is returned for a token file whose content is not a Vigil token.
var ErrBadToken = errors.New("malformed token")

// LoadOrCreateToken returns the API token kept in dir, creating it (mode 0600) when it
// does not exist yet. It refuses a token file that group or others may read or that is
// not a regular file, rather than serving with a credential that may have leaked.
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	tok, err := ReadToken(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, tokenBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	tok = tokenPrefix + hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write token file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write token file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write token file %s: %w", path, err)
	}
	return tok, nil
}

// ReadToken reads and checks a token file. It fails with fs.ErrNotExist (wrapped) when
// the file is missing.
func ReadToken(path string) (string, error) {
	// Open once, without following a symlink, and check what was opened, so the file
	// cannot be swapped between the check and the read.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return "", fmt.Errorf("token file %s is not a regular file (a symbolic link); refusing to follow it", path)
	}
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file (%s)", path, info.Mode().Type())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o: group and others must not be able to read it; run 'chmod 600 %s' or delete it to have a new token made", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if err := checkToken(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return tok, nil
}

func checkToken(tok string) error {
	hexPart, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok || len(hexPart) != 2*tokenBytes {
		return ErrBadToken
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return ErrBadToken
	}
	return nil
}

// tokenEqual compares in constant time, so response timing tells nothing of the token.
func tokenEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
