package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/medpay/medpay/client"
	"github.com/medpay/medpay/secret"
)

// The developer commands keep their access token between runs: asking for a new one would cut
// every older token of the appid (the hospital's own system's too) down to 5 minutes. The cache
// is a JSON file readable by its owner only, one entry per base URL, appid and secret.

type cachedToken struct {
	Token   string    `json:"access_token"`
	Expires time.Time `json:"expires_at"`
}

// tokenCachePath is the cache file: --token-cache, or medpay/tokens.json under the user's cache
// directory; "" (when --token-cache is "off" or there is no cache directory) keeps no cache.
func tokenCachePath(flagValue string) string {
	switch flagValue {
	case "off", "none", "-":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "medpay", "tokens.json")
	}
	return flagValue
}

// tokenCacheKey names a token by what it was obtained with: a token got with another secret is
// not reused (the secret itself is not written, only a prefix of its hash).
func tokenCacheKey(baseURL, appid, subAppID, appSecret string) string {
	return baseURL + " " + appid + " " + subAppID + " " + secret.Hash(appSecret)[:12]
}

func readTokenCache(path string) map[string]cachedToken {
	m := map[string]cachedToken{}
	if data, err := os.ReadFile(path); err == nil {
		json.Unmarshal(data, &m) // a damaged cache is only a cache: start again
	}
	return m
}

// loadToken gives c the cached token for key, if there is one still valid.
func loadToken(path, key string, c *client.Client) {
	if path == "" {
		return
	}
	if t, ok := readTokenCache(path)[key]; ok && time.Now().Before(t.Expires) {
		c.SetAccessToken(t.Token, t.Expires)
	}
}

// saveToken keeps c's token for key (if it has one), dropping expired entries.
func saveToken(path, key string, c *client.Client) error {
	tok, exp := c.CachedAccessToken()
	if path == "" || tok == "" {
		return nil
	}
	m := readTokenCache(path)
	if m[key].Token == tok {
		return nil
	}
	now := time.Now()
	for k, t := range m {
		if !now.Before(t.Expires) {
			delete(m, k)
		}
	}
	m[key] = cachedToken{Token: tok, Expires: exp}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
