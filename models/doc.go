// Package models is totpadm's library: the rules of TOTP two-factor
// authentication (RFC 6238 codes, replay protection, lockout, backup codes,
// secrets sealed with AES-256-GCM) applied to an application's database.
// The totpadm command is one caller; the application's login path is the
// other, so the two can never disagree.
//
// A Service holds the rules and the key, and no connection: every method
// takes a context and the *gorm.DB to use. A login path calls two methods:
//
//	svc, err := models.NewService(cfg) // cfg from models.DefaultConfig()
//	user := models.User{ID: userID}    // or svc.LookupUser(ctx, db, ref)
//
//	need, err := svc.SecondFactor(ctx, db, user) // after the password
//	if err != nil { deny }                       // fail closed
//	if need == models.NoSecondFactor { start the session }
//
//	_, err = svc.Verify(ctx, db, user, code) // the code the user typed
//	if err != nil { deny }                   // only nil lets the user in
//
// The administrative operations — Enroll, RegenerateBackupCodes, Disable,
// Unlock — each have a batched form (EnrollMany, …) that changes each user
// completely or not at all; the single-user method is the batch of one.
// They may run inside the caller's transaction. Verify and Confirm must not:
// a rejected code is counted even when the caller rolls back.
//
// Errors match the sentinels in errors.go under errors.Is and state what
// went wrong without advice for any particular tool; totpadm's CLI adds
// its own. Package keyfile loads the key without linking SQLite.
package models
