package client

import "time"

// SetAccessToken gives the client a token obtained earlier, e.g. one a command kept between runs.
// Asking for a new token cuts every older token of the same appid down to 5 minutes, so a tool
// that runs once per command reuses its token instead; the client renews it as usual when it is
// near its expiry or the platform no longer accepts it.
func (c *Client) SetAccessToken(token string, expires time.Time) {
	c.mu.Lock()
	c.token, c.expires = token, expires
	c.mu.Unlock()
}

// CachedAccessToken returns the token the client holds and its expiry, without asking for one:
// "" when it holds none.
func (c *Client) CachedAccessToken() (string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, c.expires
}
