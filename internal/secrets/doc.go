// Package secrets protects idbroker's secrets at rest.
//
// Two kinds of secret are stored, and they are treated differently:
//
//   - Secrets idbroker only has to recognise — operator API keys, SCIM
//     directory tokens, portal-link tokens, OAuth client secrets, refresh
//     tokens — are minted here by NewToken with 256 bits of entropy and stored
//     as HashToken (SHA-256). Presented tokens are hashed and compared with
//     Equal, in constant time. A database dump reveals no usable credential.
//
//   - Secrets idbroker must read back — its token-signing private keys, IdP
//     client secrets, SAML SP keys, webhook signing secrets — are sealed by a
//     Keyring, which the store uses as its Cipher.
//
// # Envelope encryption
//
// A Keyring holds the master key (32 bytes, from IDBROKER_MASTER_KEY or, for
// the embedded default, a 0600 key file created on first start) and any
// older master keys still being rotated out. Seal never encrypts a value with
// the master key directly: each value gets a fresh random 256-bit data key
// (DEK) that encrypts it with AES-256-GCM, additionalData as AAD, and the DEK
// is then wrapped (itself encrypted with AES-256-GCM) under the master key.
// The sealed value carries everything needed to open it:
//
//	version (1) | master key id (4) | wrapped DEK (12 nonce + 32 + 16 tag) | nonce (12) | ciphertext + tag (16)
//
// Why an envelope rather than one key for everything:
//
//   - Nonce safety. AES-GCM with random 96-bit nonces must not encrypt more
//     than about 2^32 messages under one key. Each DEK encrypts exactly one
//     value, and the master key only ever encrypts 32-byte DEKs, so neither
//     comes near the bound however many values are sealed or re-sealed.
//   - Cheap master-key rotation. The master key id tells Open which key of
//     the ring to unwrap with, so values sealed under an older key keep
//     opening while the newest (primary) key seals. Rewrap moves a value to
//     the primary key by re-wrapping only its 48-byte DEK — it needs neither
//     the plaintext nor the row's additionalData — after which the old key
//     can be dropped from the ring.
//   - Binding. The DEK's AAD is the header (format version and master key
//     id), so a header cannot be altered without the unwrap failing; the
//     value's AAD is the caller's additionalData (the store passes the table,
//     column and row id), so a sealed value copied into another row does not
//     open there.
//
// Open fails with ErrOpen — never a panic, never partial plaintext — on any
// truncated, altered, mis-bound or foreign input; it does not say which
// check failed, because that would help an attacker and not an operator.
package secrets
