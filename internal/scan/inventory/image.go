package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"

	"github.com/vigil-sec/vigil/internal/scan"
)

// maxMetaSize bounds the JSON documents of an image (manifests, index, config).
const maxMetaSize = 16 << 20

// imageLayer is one layer of an image: the member holding it and its diff ID.
type imageLayer struct {
	member    string
	size      int64
	diffID    string
	createdBy string
}

// imageManifest is what a scan needs of an image: its ID (config digest), tags and layers.
type imageManifest struct {
	id     string
	tags   []string
	layers []imageLayer
}

// dockerManifest mirrors an entry of manifest.json written by `docker save`
// (moby image/tarexport).
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ociDescriptor, ociIndex and ociManifest mirror the OCI image spec (image-spec
// specs-go/v1), reduced to the fields a scan reads.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
	// Layers is set when the document is in fact a manifest.
	Layers []ociDescriptor `json:"layers"`
	Config *ociDescriptor  `json:"config"`
}

// imageConfig mirrors the fields of an image config (image-spec config.go) a scan reads.
type imageConfig struct {
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

var digestRE = regexp.MustCompile(`^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-fA-F0-9]{32,})$`)

// blobName turns a digest into the member that holds the blob, refusing anything that
// is not a digest (a path in disguise).
func blobName(d string) (string, error) {
	m := digestRE.FindStringSubmatch(d)
	if m == nil {
		return "", fmt.Errorf("invalid digest %q", d)
	}
	return "blobs/" + m[1] + "/" + m[2], nil
}

func readMember(src blobSource, name string) ([]byte, error) {
	rc, size, err := src.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxMetaSize {
		return nil, fmt.Errorf("%s: %s: %d bytes, over the %d bound", src.describe(), name, size, maxMetaSize)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaSize))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", src.describe(), name, err)
	}
	return b, nil
}

// readManifest finds the image in a source: manifest.json when present (every `docker
// save`, legacy and OCI style), else the OCI index.json.
func readManifest(src blobSource) (*imageManifest, error) {
	var layerMembers []string
	var sizes []int64
	var configName string
	var tags []string

	b, err := readMember(src, "manifest.json")
	switch {
	case err == nil:
		var dm []dockerManifest
		if err := json.Unmarshal(b, &dm); err != nil {
			return nil, fmt.Errorf("%s: manifest.json: %w", src.describe(), err)
		}
		if len(dm) == 0 {
			return nil, fmt.Errorf("%s: manifest.json: no image", src.describe())
		}
		configName, tags, layerMembers = dm[0].Config, dm[0].RepoTags, dm[0].Layers
	case errors.Is(err, errNoMember):
		desc, err := resolveIndex(src)
		if err != nil {
			return nil, err
		}
		if desc.Config == nil {
			return nil, fmt.Errorf("%s: manifest has no config", src.describe())
		}
		if configName, err = blobName(desc.Config.Digest); err != nil {
			return nil, fmt.Errorf("%s: config: %w", src.describe(), err)
		}
		for _, l := range desc.Layers {
			n, err := blobName(l.Digest)
			if err != nil {
				return nil, fmt.Errorf("%s: layer: %w", src.describe(), err)
			}
			layerMembers = append(layerMembers, n)
			sizes = append(sizes, l.Size)
		}
		tags = desc.tags
	default:
		return nil, err
	}

	cb, err := readMember(src, configName)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, fmt.Errorf("%s: image config %s: %w", src.describe(), configName, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(layerMembers) {
		return nil, fmt.Errorf("%s: image config lists %d layers, manifest %d", src.describe(), len(cfg.RootFS.DiffIDs), len(layerMembers))
	}
	sum := sha256.Sum256(cb)
	m := &imageManifest{id: "sha256:" + hex.EncodeToString(sum[:]), tags: tags}
	// History has an entry per build step; only those without empty_layer made a layer.
	var createdBy []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, h.CreatedBy)
		}
	}
	for i, name := range layerMembers {
		l := imageLayer{member: name, diffID: cfg.RootFS.DiffIDs[i]}
		if i < len(sizes) {
			l.size = sizes[i]
		}
		if len(createdBy) == len(layerMembers) {
			l.createdBy = createdBy[i]
		}
		m.layers = append(m.layers, l)
	}
	return m, nil
}

type resolvedManifest struct {
	ociIndex
	tags []string
}

// resolveIndex follows index.json down to one image manifest, choosing this machine's
// platform in a multi-platform index.
func resolveIndex(src blobSource) (*resolvedManifest, error) {
	b, err := readMember(src, "index.json")
	if err != nil {
		if errors.Is(err, errNoMember) {
			return nil, fmt.Errorf("%s: neither manifest.json nor index.json: not an image archive or layout: %w", src.describe(), ErrUnsupported)
		}
		return nil, err
	}
	var tags []string
	name := "index.json"
	for depth := 0; depth < 4; depth++ {
		var idx ociIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", src.describe(), name, err)
		}
		if len(idx.Manifests) == 0 {
			if idx.Config != nil {
				return &resolvedManifest{ociIndex: idx, tags: tags}, nil
			}
			return nil, fmt.Errorf("%s: %s: no manifests", src.describe(), name)
		}
		d := pickManifest(idx.Manifests)
		if t := d.Annotations["org.opencontainers.image.ref.name"]; t != "" {
			tags = append(tags, t)
		}
		if t := d.Annotations["io.containerd.image.name"]; t != "" {
			tags = append(tags, t)
		}
		if name, err = blobName(d.Digest); err != nil {
			return nil, fmt.Errorf("%s: %w", src.describe(), err)
		}
		if b, err = readMember(src, name); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: image index nested too deep", src.describe())
}

func pickManifest(ds []ociDescriptor) ociDescriptor {
	for _, d := range ds {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			return d
		}
	}
	for _, d := range ds {
		// Attestation manifests (BuildKit) are not images.
		if d.Annotations["vnd.docker.reference.type"] == "" {
			return d
		}
	}
	return ds[0]
}

func scanImageSource(ctx context.Context, src blobSource, t scan.Target, o Options) (*scan.Inventory, error) {
	m, err := readManifest(src)
	if err != nil {
		return nil, err
	}
	if t.ID == "" {
		t.ID = m.id
	}
	inv := &scan.Inventory{Target: t}
	for _, l := range m.layers {
		inv.Layers = append(inv.Layers, scan.Layer{DiffID: l.diffID, CreatedBy: l.createdBy})
	}
	s := newSession(o)
	recs, err := scanLayers(ctx, s, src, m.layers)
	if err != nil {
		return nil, err
	}
	s.finish(inv, recs)
	return inv, nil
}
