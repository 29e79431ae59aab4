// Package auth turns a client's password, a JWT, into an Identity: who the
// client is (sub, iss), which tenants it may see (the tenant claim), an
// optional role, whether it asked for (and may have) an unscoped session,
// whether its scopes make it read-only, and when the token expires.
//
// auth owns key loading (PEM public keys and certificates, JWKS documents,
// HMAC secret files, and the JWKS at an issuer's configured jwks_url,
// cached by its max-age), the issuers file that binds each issuer to its
// own keys and to the tenants it may speak for, signature verification
// with an algorithm allowlist that follows each key's type, the
// registered-claim checks (exp, nbf, iat, iss, aud) and the shapes of the
// tenant, role and scope claims. It also mints HS256 tokens for
// development (Mint).
//
// auth must never know about SQL, never fetch any address but a configured
// jwks_url (jku, x5u, jwk and x5c headers are ignored), never treat a token
// header as a path (kid is only a map key), never verify a token with
// another issuer's keys, never accept alg "none" or an HMAC signature made
// with a public key, and never put the token or any part of it into an
// error message. Every error Verify returns is an *Error carrying the
// SQLSTATE the proxy sends to the client.
package auth
