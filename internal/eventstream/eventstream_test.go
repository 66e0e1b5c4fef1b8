package eventstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sse "github.com/tmaxmax/go-sse"
)

type event struct{ Type, Data string }

// decodeAll runs a Decoder over r to its end.
func decodeAll(r io.Reader, max int) ([]event, error) {
	d := NewDecoder(r, max)
	var out []event
	for {
		typ, data, err := d.Next()
		if err != nil {
			return out, err
		}
		out = append(out, event{string(typ), string(data)})
	}
}

// splitReader hands out its input in two reads, cut at n, then one byte per read.
type splitReader struct {
	in    []byte
	n     int
	reads int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.in) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), len(r.in))
	if r.reads++; r.reads == 1 {
		k = min(k, r.n)
	} else if r.reads > 2 {
		k = 1
	}
	copy(p, r.in[:k])
	r.in = r.in[k:]
	return k, nil
}

// feeds hands each input to the decoder whole, a byte at a time, in 7-byte reads, and cut in
// two at every byte (so that a CRLF, a BOM and every rune are split across two reads).
func feeds(in string) map[string]func() io.Reader {
	f := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"7 bytes":  func() io.Reader { return &chunkReader{strings.NewReader(in), 7} },
	}
	for n := 1; n < len(in) && len(in) < 200; n++ {
		f[fmt.Sprintf("cut at %d", n)] = func() io.Reader { return &splitReader{in: []byte(in), n: n} }
	}
	return f
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestWHATWGVectors: each rule of the WHATWG event-stream interpretation.
func TestWHATWGVectors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []event
		pending int // bytes of the block the end of the body cut off
	}{
		{"LF line ends", "event: a\ndata: 1\n\n", []event{{"a", "1"}}, 0},
		{"CR line ends", "event: a\rdata: 1\r\r", []event{{"a", "1"}}, 0},
		{"CRLF line ends", "event: a\r\ndata: 1\r\n\r\n", []event{{"a", "1"}}, 0},
		{"mixed line ends", "data: 1\r\n\rdata: 2\n\r\n", []event{{"", "1"}, {"", "2"}}, 0},
		{"CR then LF on the next line is one line end, LF then CR two", "data: 1\n\rdata: 2\r\n\n", []event{{"", "1"}, {"", "2"}}, 0},
		{"comments", ": hi\n\n:\ndata: 1\n: inside\n\n", []event{{"", "1"}}, 0},
		{"field without colon", "data\n\ndata\ndata\n\n", []event{{"", ""}, {"", "\n"}}, 0},
		{"one optional space", "data:1\n\ndata: 1\n\ndata:  1\n\ndata: 1 \n\n", []event{{"", "1"}, {"", "1"}, {"", " 1"}, {"", "1 "}}, 0},
		{"data lines joined with LF", "data: a\ndata:\ndata: b\n\n", []event{{"", "a\n\nb"}}, 0},
		{"a block without data is not dispatched", "event: a\n\nid: 1\n\nretry: 10\n\nevent: b\ndata: x\n\n", []event{{"b", "x"}}, 0},
		{"the event type is reset after each block", "event: a\ndata: 1\n\ndata: 2\n\n", []event{{"a", "1"}, {"", "2"}}, 0},
		{"the last event type wins", "event: a\nevent: b\ndata: 1\n\n", []event{{"b", "1"}}, 0},
		{"id and retry have no effect", "id: 7\nretry: 1000\nid\nretry: x\ndata: 1\n\n", []event{{"", "1"}}, 0},
		{"unknown and case-different fields", "Data: 1\ndatas: 2\n data: 3\ndata: 4\n\n", []event{{"", "4"}}, 0},
		{"a leading BOM is stripped", "\xEF\xBB\xBFdata: 1\n\n", []event{{"", "1"}}, 0},
		{"a BOM alone on the first line, cut from its line end", "\xEF\xBB\xBF\ndata: 1\n\n", []event{{"", "1"}}, 0},
		{"only the first BOM is stripped", "\xEF\xBB\xBF\xEF\xBB\xBFdata: 1\n\ndata: 2\n\n", []event{{"", "2"}}, 0},
		{"a BOM after blank lines is not stripped", "\n\xEF\xBB\xBFdata: x\n\ndata: y\n\n", []event{{"", "y"}}, 0},
		{"a cut BOM is invalid UTF-8", "\xEF\xBBdata: 1\n\n", nil, 0},
		{"invalid UTF-8 becomes U+FFFD", "data: a\xFFb\n\n", []event{{"", "a\uFFFDb"}}, 0},
		{"in the event type too", "event: a\xC0\ndata: 1\n\n", []event{{"a\uFFFD", "1"}}, 0},
		{"a truncated 3-byte sequence is one U+FFFD", "data: \xE2\x82x\n\n", []event{{"", "\uFFFDx"}}, 0},
		{"valid U+FFFD stays", "data: \uFFFD\n\n", []event{{"", "\uFFFD"}}, 0},
		{"a last block without its blank line is not dispatched", "data: 1\n\ndata: 2\n", []event{{"", "1"}}, 8},
		{"a last line without its end", "data: 1\n\ndata: 2", []event{{"", "1"}}, 7},
		{"blank lines only", "\n\r\n\r", nil, 0},
		{"empty", "", nil, 0},
	}
	for _, tt := range tests {
		for name, feed := range feeds(tt.in) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				d := NewDecoder(feed(), 1<<10)
				var got []event
				for {
					typ, data, err := d.Next()
					if err != nil {
						assert.Equal(t, io.EOF, err)
						break
					}
					got = append(got, event{string(typ), string(data)})
				}
				assert.Equal(t, tt.want, got)
				total, pending := d.Read()
				assert.Equal(t, int64(len(tt.in)), total)
				assert.Equal(t, tt.pending, pending)
				assert.Equal(t, whatwg(tt.in), got, "the reference parser agrees")
			})
		}
	}
}

// TestMaximalSubparts: one U+FFFD per maximal subpart of an invalid sequence (Unicode 3.9,
// "U+FFFD Substitution of Maximal Subparts", which the WHATWG UTF-8 decoder follows), where Go's
// decoder gives one per byte.
func TestMaximalSubparts(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"}, // Unicode's Table 3-8
		{"\xE2\x82", "\uFFFD"},                           // a 3-byte sequence cut short
		{"\xF0\x9F\x98", "\uFFFD"},                       // a 4-byte sequence cut short
		{"\xE2\x82\xE2\x82\xAC", "\uFFFD€"},              // cut short, then whole
		{"\xC0\xAF", "\uFFFD\uFFFD"},                     // overlong: C0 never starts a sequence
		{"\xE0\x80\x80", "\uFFFD\uFFFD\uFFFD"},           // overlong: E0 needs A0..BF next
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},           // a surrogate: ED needs 80..9F next
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"}, // above U+10FFFF
		{"\xF5\x80", "\uFFFD\uFFFD"},
		{"\xFF\xFE", "\uFFFD\uFFFD"},
		{"\x80\xBF", "\uFFFD\uFFFD"},
		{"\xF0\x90\x80", "\uFFFD"},
		{"\xEF\xBF\xBD", "\uFFFD"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, string(valid([]byte(tt.in))), "%q", tt.in)
		assert.Equal(t, tt.want, utf8Decode([]byte(tt.in)), "reference, %q", tt.in)
	}
}

func TestTooLarge(t *testing.T) {
	event := strings.Repeat("x", 92) // "data: " + 92 + "\n\n" is 100 bytes
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"at the limit", "data: " + event + "\n\n", true},
		{"one byte over", "data: x" + event + "\n\n", false},
		{"a line without end", "data: " + strings.Repeat("y", 1000), false},
		{"many events at the limit", strings.Repeat("data: "+event+"\n\n", 100), true},
		{"comments count", ": " + strings.Repeat("c", 100) + "\ndata: 1\n\n", false},
	}
	for _, tt := range tests {
		for name, feed := range map[string]io.Reader{"whole": strings.NewReader(tt.in), "one byte": iotest.OneByteReader(strings.NewReader(tt.in))} {
			_, err := decodeAll(feed, 100)
			if tt.ok {
				assert.Equal(t, io.EOF, err, tt.name+"/"+name)
			} else {
				assert.Equal(t, ErrTooLarge, err, tt.name+"/"+name)
			}
		}
	}
}

func TestBodyErrorsAndEmptyReads(t *testing.T) {
	boom := errors.New("boom")
	_, err := decodeAll(iotest.ErrReader(boom), 100)
	assert.Equal(t, boom, err)
	_, err = decodeAll(emptyReader{}, 100)
	assert.Equal(t, io.ErrNoProgress, err)
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestBuffersFollowWhatArrives: an idle decoder holds one read buffer; after a large event the
// buffers it grew are let go at the next call, and Release lets everything go.
func TestBuffersFollowWhatArrives(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	d := NewDecoder(&chunkReader{strings.NewReader("data: " + big + "\n\ndata: 1\n\n"), 1400}, 2<<20)
	_, data, err := d.Next()
	require.NoError(t, err)
	assert.Len(t, data, 1<<20)
	_, data, err = d.Next()
	require.NoError(t, err)
	assert.Equal(t, "1", string(data))
	assert.Equal(t, readSize, cap(d.buf))
	assert.LessOrEqual(t, cap(d.line), readSize, "the joined line is gone")
	assert.LessOrEqual(t, cap(d.data)+cap(d.typ), 2*keepCap, "the large event's buffers are gone")
	d.Release()
	assert.Nil(t, d.buf)

	// An event under keepCap keeps its data buffer for the next one, and nothing more: the line
	// it was joined from, which spanned reads, is let go.
	for _, n := range []int{8 << 10, 32 << 10, 60 << 10} {
		d := NewDecoder(&chunkReader{strings.NewReader("event: answer\ndata: " + big[:n] + "\n\n"), 1400}, 2<<20)
		_, data, err := d.Next()
		require.NoError(t, err)
		require.Len(t, data, n)
		held := cap(d.line) + cap(d.data) + cap(d.typ)
		t.Logf("after a %d KiB event: %d bytes beyond the read buffer (%.2fx)", n>>10, held, float64(held)/float64(n))
		assert.LessOrEqual(t, held, n+n/8+readSize, "after a %d KiB event", n>>10)
	}
}

// utf8Decode is the Encoding standard's UTF-8 decoder, written from its steps, with U+FFFD for
// errors: the reference the decoder is held against.
func utf8Decode(b []byte) string {
	var out []rune
	cp, seen, needed := rune(0), 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i <= len(b); i++ {
		if i == len(b) {
			if needed != 0 {
				out = append(out, utf8.RuneError)
			}
			break
		}
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out = append(out, rune(c))
			case c >= 0xC2 && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				out = append(out, utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			out = append(out, utf8.RuneError)
			i-- // the byte is read again
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		if seen++; seen == needed {
			out = append(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	return string(out)
}

// whatwg is the WHATWG interpretation written from the spec's steps, over the decoded text.
func whatwg(in string) []event {
	s := strings.TrimPrefix(utf8Decode([]byte(in)), "\uFEFF")
	var out []event
	var data strings.Builder
	typ := ""
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return out // a last line without its end, and its block, are not dispatched
		}
		line := s[:i]
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
		switch name, value, found := strings.Cut(line, ":"); {
		case line == "":
			if data.Len() > 0 {
				out = append(out, event{typ, strings.TrimSuffix(data.String(), "\n")})
			}
			data.Reset()
			typ = ""
		case name == "":
		case name == "event":
			typ = value
			if found {
				typ = strings.TrimPrefix(value, " ")
			}
		case name == "data":
			data.WriteString(strings.TrimPrefix(value, " "))
			data.WriteByte('\n')
		}
	}
}

// FuzzDecoder holds the decoder against the spec's steps on any bytes, however they are split,
// and against go-sse's sse.Read where go-sse follows the spec: valid UTF-8, no byte order mark
// but at the start (go-sse strips one after leading blank lines too), and only events with data
// (go-sse also yields blocks without a data field, as empty events).
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"event: a\ndata: 1\n\n", "data:x\r\rdata: y\r\n\r\n", "event: x\n\nid: 1\n\ndata:\n\n",
		"\xEF\xBB\xBFdata: 1\n\n: c\n\nevent:b\ndata\ndata: 2\n\n", "\n\xEF\xBB\xBFdata: x\n\n",
		"data: a\xFFb\n\n", "data: \xE2\x82x\n\n", "\xEF\xBB\xBF\ndata: x\n\n", "data: tail\n", "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:comment\ndata:test\n\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		want := whatwg(string(in))
		for _, r := range []io.Reader{bytes.NewReader(in), &chunkReader{bytes.NewReader(in), int(chunk%16) + 1}} {
			got, err := decodeAll(r, len(in)+1)
			require.Equal(t, io.EOF, err)
			assert.Equal(t, want, got, "%q", in)
		}
		if !utf8.Valid(in) || bytes.LastIndex(in, []byte("\uFEFF")) > 0 {
			return
		}
		complete := append(bytes.Clone(in), "\n\n"...)
		ours, _ := decodeAll(bytes.NewReader(complete), len(complete)+1)
		var theirs []event
		for ev, err := range sse.Read(bytes.NewReader(complete), nil) {
			require.NoError(t, err)
			theirs = append(theirs, event{ev.Type, ev.Data})
		}
		assert.Equal(t, withData(ours), withData(theirs), "%q", complete)
	})
}

func withData(evs []event) []event {
	var out []event
	for _, ev := range evs {
		if ev.Data != "" {
			out = append(out, ev)
		}
	}
	return out
}
