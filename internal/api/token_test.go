package api_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/api"
)

var tokenFormat = regexp.MustCompile(`^vgl_[0-9a-f]{64}$`)

// validToken is a well-formed token that no test server is configured with.
const validToken = "vgl_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// writeTokenFile writes content to dir/token with exactly mode perm, whatever the umask.
func writeTokenFile(t *testing.T, dir, content string, perm fs.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, api.TokenFile)
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadOrCreateTokenCreates(t *testing.T) {
	dir := t.TempDir()
	tok, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateToken: %v", err)
	}
	if !tokenFormat.MatchString(tok) {
		t.Errorf("token %q does not look like vgl_ and 64 hex digits", tok)
	}

	path := filepath.Join(dir, api.TokenFile)
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Mode().IsRegular() {
		t.Errorf("token file is %s, want a regular file", info.Mode().Type())
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("token file mode = %04o, want 0600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(raw)); got != tok {
		t.Errorf("token file holds %q, LoadOrCreateToken returned %q", got, tok)
	}

	again, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatalf("second LoadOrCreateToken: %v", err)
	}
	if again != tok {
		t.Errorf("second LoadOrCreateToken = %q, want the first token %q", again, tok)
	}
	read, err := api.ReadToken(path)
	if err != nil {
		t.Fatalf("ReadToken of a created token: %v", err)
	}
	if read != tok {
		t.Errorf("ReadToken = %q, want %q", read, tok)
	}
}

func TestLoadOrCreateTokenIsRandom(t *testing.T) {
	a, err := api.LoadOrCreateToken(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := api.LoadOrCreateToken(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two data dirs got the same token %q", a)
	}
}

func TestLoadOrCreateTokenMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "does-not-exist")
	if tok, err := api.LoadOrCreateToken(dir); err == nil {
		t.Fatalf("LoadOrCreateToken in a missing dir = %q, want an error", tok)
	}
}

// LoadOrCreateToken must never replace a token file it cannot use: the operator has to
// look at it, and a file that others can read may already have leaked.
func TestLoadOrCreateTokenKeepsUnusableFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		perm    fs.FileMode
		wantErr error  // checked with errors.Is when set
		wantMsg string // a substring of the error when set
	}{
		{name: "empty", content: "", perm: 0o600, wantErr: api.ErrBadToken},
		{name: "garbage", content: "hunter2\n", perm: 0o600, wantErr: api.ErrBadToken},
		{name: "wrong prefix", content: "xyz_" + validToken[4:] + "\n", perm: 0o600, wantErr: api.ErrBadToken},
		{name: "short", content: validToken[:len(validToken)-2] + "\n", perm: 0o600, wantErr: api.ErrBadToken},
		{name: "group readable", content: validToken + "\n", perm: 0o640, wantMsg: "chmod 600"},
		{name: "world readable", content: validToken + "\n", perm: 0o604, wantMsg: "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeTokenFile(t, dir, tt.content, tt.perm)

			tok, err := api.LoadOrCreateToken(dir)
			if err == nil {
				t.Fatalf("LoadOrCreateToken = %q, want an error", tok)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}

			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tt.content {
				t.Errorf("token file now holds %q, want it unchanged: %q", raw, tt.content)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != tt.perm {
				t.Errorf("token file mode is now %04o, want it unchanged: %04o", info.Mode().Perm(), tt.perm)
			}
		})
	}
}

// A dangling symlink where the token belongs must not be followed to create the token
// wherever it points.
func TestLoadOrCreateTokenDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, api.TokenFile)); err != nil {
		t.Fatal(err)
	}
	if tok, err := api.LoadOrCreateToken(dir); err == nil {
		t.Errorf("LoadOrCreateToken through a dangling symlink = %q, want an error", tok)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("symlink target was created (Lstat: %v)", err)
	}
}

func TestReadTokenMode(t *testing.T) {
	tests := []struct {
		perm fs.FileMode
		ok   bool
	}{
		{perm: 0o600, ok: true},
		{perm: 0o400, ok: true},
		{perm: 0o700, ok: true},
		{perm: 0o640, ok: false},
		{perm: 0o604, ok: false},
		{perm: 0o644, ok: false},
		{perm: 0o660, ok: false},
		{perm: 0o606, ok: false},
		{perm: 0o610, ok: false},
		{perm: 0o601, ok: false},
		{perm: 0o666, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.perm.String(), func(t *testing.T) {
			path := writeTokenFile(t, t.TempDir(), validToken+"\n", tt.perm)
			tok, err := api.ReadToken(path)
			if tt.ok {
				if err != nil {
					t.Fatalf("ReadToken: %v", err)
				}
				if tok != validToken {
					t.Errorf("ReadToken = %q, want %q", tok, validToken)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadToken of a mode %04o file = %q, want an error", tt.perm, tok)
			}
			if !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("error %q does not tell to chmod 600", err)
			}
			if strings.Contains(err.Error(), validToken) {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
}

func TestReadTokenNotRegular(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{
			name: "symlink to a good token",
			setup: func(t *testing.T, path string) {
				target := writeTokenFile(t, t.TempDir(), validToken+"\n", 0o600)
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "dangling symlink",
			setup: func(t *testing.T, path string) {
				if err := os.Symlink(filepath.Join(t.TempDir(), "missing"), path); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "directory",
			setup: func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), api.TokenFile)
			tt.setup(t, path)
			tok, err := api.ReadToken(path)
			if err == nil {
				t.Fatalf("ReadToken = %q, want an error", tok)
			}
			if errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q says the file does not exist, so a caller would create one", err)
			}
			if !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("error %q does not say the file is not a regular file", err)
			}
		})
	}
}

func TestReadTokenContents(t *testing.T) {
	hexPart := validToken[len("vgl_"):]
	tests := []struct {
		name    string
		content string
		want    string // "" means ErrBadToken
	}{
		{name: "bare", content: validToken, want: validToken},
		{name: "trailing newline", content: validToken + "\n", want: validToken},
		{name: "trailing CRLF", content: validToken + "\r\n", want: validToken},
		{name: "surrounding blanks", content: "  " + validToken + " \n\n", want: validToken},
		{name: "empty", content: ""},
		{name: "only newline", content: "\n"},
		{name: "only prefix", content: "vgl_\n"},
		{name: "no prefix", content: hexPart + "\n"},
		{name: "wrong prefix", content: "vgk_" + hexPart + "\n"},
		{name: "upper-case prefix", content: "VGL_" + hexPart + "\n"},
		{name: "prefix without underscore", content: "vgl" + hexPart + "\n"},
		{name: "short by one digit", content: validToken[:len(validToken)-1] + "\n"},
		{name: "short by one byte", content: validToken[:len(validToken)-2] + "\n"},
		{name: "long by one byte", content: validToken + "00\n"},
		{name: "non-hex", content: "vgl_" + strings.Repeat("g", 64) + "\n"},
		{name: "one non-hex digit", content: validToken[:len(validToken)-1] + "z\n"},
		{name: "inner space", content: validToken[:20] + " " + validToken[21:] + "\n"},
		{name: "two tokens", content: validToken + "\n" + validToken + "\n"},
		{name: "NUL byte", content: validToken[:len(validToken)-1] + "\x00\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTokenFile(t, t.TempDir(), tt.content, 0o600)
			tok, err := api.ReadToken(path)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("ReadToken: %v", err)
				}
				if tok != tt.want {
					t.Errorf("ReadToken = %q, want %q", tok, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadToken = %q, want an error", tok)
			}
			if !errors.Is(err, api.ErrBadToken) {
				t.Errorf("error %q is not ErrBadToken", err)
			}
			if tok != "" {
				t.Errorf("ReadToken returned %q along with its error", tok)
			}
		})
	}
}

func TestReadTokenMissing(t *testing.T) {
	tests := []struct {
		name string
		path func(dir string) string
	}{
		{name: "missing file", path: func(dir string) string { return filepath.Join(dir, api.TokenFile) }},
		{name: "missing dir", path: func(dir string) string { return filepath.Join(dir, "nope", api.TokenFile) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := api.ReadToken(tt.path(t.TempDir()))
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadToken = %q, %v; want an error wrapping fs.ErrNotExist", tok, err)
			}
		})
	}
}
