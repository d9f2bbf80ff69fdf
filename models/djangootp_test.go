package models

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// djangoPython is Debian's python3 with django-otp (python3-django-otp);
// the python3 on PATH may be another one without it.
const djangoPython = "/usr/bin/python3"

// TestDjangoMatchAgreesWithDjangoOTP checks totpadm's copy of
// TOTPDevice.verify_token's search against django-otp's own TOTP class,
// on random devices and codes: tolerance around drift, steps at or before
// last_t refused, t0 in the past and the future, 6 and 8 digits.
func TestDjangoMatchAgreesWithDjangoOTP(t *testing.T) {
	if err := exec.Command(djangoPython, "-c", "import django_otp.oath").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("django-otp is not installed for %s (.ci/run installs python3-django-otp): %v", djangoPython, err)
		}
		t.Skipf("django-otp is not installed for %s: %v", djangoPython, err)
	}
	type tc struct {
		Key                                            string
		Step, T0, Digits, Tolerance, Drift, LastT, Now int64
		Token                                          string
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC).Unix()
	var cases []tc
	for i := 0; i < 400; i++ {
		key := make([]byte, 20)
		for j := range key {
			key[j] = byte(rng.IntN(256))
		}
		c := tc{
			Key: hex.EncodeToString(key), Step: []int64{30, 60, 17}[rng.IntN(3)], Digits: []int64{6, 8}[rng.IntN(2)],
			Tolerance: rng.Int64N(3), Drift: rng.Int64N(5) - 2, Now: now + rng.Int64N(100000),
		}
		if rng.IntN(4) == 0 {
			c.T0 = rng.Int64N(2000) - 1000
		}
		base := floorDiv(c.Now-c.T0, c.Step)
		c.LastT = base + rng.Int64N(7) - 3
		if rng.IntN(5) == 0 {
			c.LastT = -1
		}
		// Mostly the code of a step near the expected one, sometimes noise.
		step := base + c.Drift + rng.Int64N(7) - 3
		code, err := GenerateCode(key, step, Params{Algorithm: "SHA1", Digits: int(c.Digits), Period: int(c.Step)})
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(6) == 0 {
			code = strconv.FormatInt(rng.Int64N(1_000_000), 10)
			for int64(len(code)) < c.Digits {
				code = "0" + code
			}
		}
		c.Token = code
		cases = append(cases, c)
	}
	in, _ := json.Marshal(cases)
	script := `
import json, sys
from binascii import unhexlify
from django_otp.oath import TOTP
out = []
for c in json.load(sys.stdin):
    totp = TOTP(unhexlify(c["Key"]), c["Step"], c["T0"], c["Digits"], c["Drift"])
    totp.time = c["Now"]
    ok = totp.verify(int(c["Token"]), c["Tolerance"], c["LastT"] + 1)
    out.append({"ok": ok, "t": totp.t() if ok else 0, "drift": totp.drift if ok else 0})
json.dump(out, sys.stdout)
`
	cmd := exec.Command(djangoPython, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("django-otp: %v", err)
	}
	var want []struct {
		OK    bool  `json:"ok"`
		T     int64 `json:"t"`
		Drift int64 `json:"drift"`
	}
	if err := json.Unmarshal(raw, &want); err != nil || len(want) != len(cases) {
		t.Fatalf("django-otp answered %d of %d: %v", len(want), len(cases), err)
	}
	accepted := 0
	for i, c := range cases {
		dev := djangoDevice{key: c.Key, step: c.Step, t0: c.T0, digits: c.Digits, tolerance: c.Tolerance, drift: c.Drift, lastT: c.LastT}
		step, drift, ok, _, err := djangoMatch(&dev, c.Token, time.Unix(c.Now, 0))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if ok != want[i].OK || (ok && (step != want[i].T || drift != want[i].Drift)) {
			t.Errorf("case %d %+v: totpadm ok=%v t=%d drift=%d, django-otp ok=%v t=%d drift=%d", i, c, ok, step, drift, want[i].OK, want[i].T, want[i].Drift)
		}
		if ok {
			accepted++
		}
	}
	// Both answers must occur, or the comparison proves little.
	if accepted < 50 || accepted > len(cases)-50 {
		t.Errorf("%d of %d cases accepted: the cases do not exercise both answers", accepted, len(cases))
	}
}

func TestDjangoBackoffEnd(t *testing.T) {
	z := &DjangoOTP{set: djangoSettings{totpThrottleFactor: 1, staticThrottleFactor: 2}}
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		dev      djangoDevice
		want     time.Duration // 0: no back-off
		noBackof bool
	}{
		{name: "no failures", dev: djangoDevice{failedAt: &at}, noBackof: true},
		{name: "failures without a time", dev: djangoDevice{failures: 3}, noBackof: true},
		{name: "one failure: 1 s", dev: djangoDevice{failures: 1, failedAt: &at}, want: time.Second},
		{name: "four failures: 8 s", dev: djangoDevice{failures: 4, failedAt: &at}, want: 8 * time.Second},
		{name: "static factor 2", dev: djangoDevice{static: true, failures: 3, failedAt: &at}, want: 8 * time.Second},
		{name: "huge count stays in the future", dev: djangoDevice{failures: 200, failedAt: &at}, want: 100 * 365 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := z.backoffEnd(&tc.dev)
			if tc.noBackof {
				if got != nil {
					t.Fatalf("back-off until %s, want none", got)
				}
				return
			}
			if got == nil || !got.Equal(at.Add(tc.want)) {
				t.Fatalf("back-off until %v, want %s", got, at.Add(tc.want))
			}
			if z.allowed(&tc.dev, at.Add(tc.want-time.Microsecond)) || !z.allowed(&tc.dev, at.Add(tc.want)) {
				t.Errorf("allowed() disagrees with the end %s", got)
			}
		})
	}
}

func TestDjangoTimeValue(t *testing.T) {
	want := time.Date(2026, 12, 2, 6, 51, 33, 173990000, time.UTC)
	for _, v := range []any{
		"2026-12-02 06:51:33.173990", // Django on SQLite, USE_TZ
		[]byte("2026-12-02 06:51:33.17399"),
		"2026-12-02 06:51:33.173990+00:00",
		"2026-12-02T07:51:33.173990+01:00",
		want.In(time.FixedZone("x", 3600)),
	} {
		got, err := djangoTimeValue(v)
		if err != nil || got == nil || !got.Equal(want) {
			t.Errorf("%v: got %v, %v; want %s", v, got, err, want)
		}
	}
	if got, err := djangoTimeValue(nil); got != nil || err != nil {
		t.Errorf("nil: got %v, %v", got, err)
	}
	if _, err := djangoTimeValue("yesterday"); err == nil {
		t.Error("an unreadable time was accepted")
	}
}

func TestFloorDiv(t *testing.T) {
	for _, tc := range [][3]int64{{7, 2, 3}, {-7, 2, -4}, {-6, 2, -3}, {0, 30, 0}, {-1, 30, -1}, {59, 30, 1}} {
		if got := floorDiv(tc[0], tc[1]); got != tc[2] {
			t.Errorf("floorDiv(%d, %d) = %d, want %d (Python's //)", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestDjangoOTPSettingsRules(t *testing.T) {
	for _, tc := range []struct {
		in   DjangoOTPSettings
		want djangoSettings
	}{
		{DjangoOTPSettings{}, djangoSettings{totpThrottleFactor: 1, staticThrottleFactor: 1, totpSync: true}},
		{DjangoOTPSettings{TOTPThrottleFactor: 2.5, StaticThrottleFactor: 3}, djangoSettings{totpThrottleFactor: 2.5, staticThrottleFactor: 3, totpSync: true}},
		{DjangoOTPSettings{NoTOTPThrottling: true, NoStaticThrottling: true, NoTOTPSync: true, TOTPThrottleFactor: 4}, djangoSettings{}},
		{DjangoOTPSettings{TOTPThrottleFactor: -1}, djangoSettings{totpThrottleFactor: 1, staticThrottleFactor: 1, totpSync: true}},
	} {
		if got := tc.in.rules(); got != tc.want {
			t.Errorf("%+v: rules %+v, want %+v", tc.in, got, tc.want)
		}
	}
	// Throttling off: no back-off however many failures.
	at := time.Now()
	z := &DjangoOTP{set: DjangoOTPSettings{NoTOTPThrottling: true}.rules()}
	if u := z.backoffEnd(&djangoDevice{failures: 9, failedAt: &at}); u != nil {
		t.Errorf("throttling off, yet a back-off until %s", u)
	}
}
