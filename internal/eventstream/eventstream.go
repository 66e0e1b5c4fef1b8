// Package eventstream decodes a text/event-stream body by the WHATWG rules
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// There is no reconnection, so the id and retry fields are recognised and have no effect.
package eventstream

import (
	"bytes"
	"errors"
	"io"
	"unicode/utf8"
)

// ReadSize is the size of the read buffer, allocated at the first read.
const ReadSize = 4096

// keepCap is the largest buffer kept for the next event; a larger one (left by a large event) is
// let go, so that an idle stream holds no more than the event it last returned.
const keepCap = 64 << 10

// ErrTooLarge is returned when an event (its lines and line ends) exceeds the decoder's limit.
var ErrTooLarge = errors.New("event too large")

// Decoder reads events from a body. It reads only when Next needs more bytes, on the caller's
// goroutine, and scans each byte a bounded number of times however the body is split.
type Decoder struct {
	r   io.Reader
	max int

	buf      []byte // the read buffer; buf[pos:end] is read and not yet scanned into lines
	pos, end int
	lf, cr   int    // the next LF and CR in buf[pos:end] (end when none); stale when below pos
	line     []byte // the start of a line that continues past the read buffer
	joined   bool   // the line last returned was assembled in line
	skipLF   bool   // the last line ended with CR: a LF right after it belongs to that line end
	started  bool   // the first line has been read (a byte order mark is stripped only there)

	typ, data []byte // the block's event type and data
	hasData   bool   // the block has a data field
	size      int    // bytes of the block so far, line ends included

	total   int64 // bytes read from the body
	err     error // the body's error (io.EOF at its end), or ErrTooLarge
	empties int   // reads in a row that returned nothing
}

// NewDecoder returns a decoder of the events of r, each at most max bytes.
func NewDecoder(r io.Reader, max int) *Decoder {
	return &Decoder{r: r, max: max}
}

// Next returns the type and data of the next event: the next block with a data field. They
// stay valid until the next call of Next or Release. At the end of the body Next returns io.EOF,
// also when the body ended inside a block (see Pending); any other error is the body's, or
// ErrTooLarge.
func (d *Decoder) Next() (typ, data []byte, err error) {
	d.typ, d.data, d.hasData, d.size = shrink(d.typ), shrink(d.data), false, 0
	for {
		line, ok := d.readLine()
		if !ok {
			return nil, nil, d.err
		}
		if len(line) > 0 {
			d.field(line)
			continue
		}
		if d.hasData {
			return valid(d.typ), valid(d.data), nil
		}
		d.typ, d.size = d.typ[:0], 0 // a block without data is not dispatched
	}
}

// field interprets one non-blank line.
func (d *Decoder) field(line []byte) {
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i == 0 {
		return // a comment
	} else if i > 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if d.hasData {
			d.data = append(d.data, '\n')
		}
		d.data, d.hasData = append(d.data, value...), true
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "id", "retry":
		// They set the last event ID and the reconnection time, which only a reconnecting
		// client uses.
	}
}

// readLine returns the next line without its line end. It reports false when the body has
// ended or failed, or the block has grown past the limit.
func (d *Decoder) readLine() ([]byte, bool) {
	if d.joined {
		d.line, d.joined = shrink(d.line), false
	}
	for {
		if d.skipLF && d.pos < d.end {
			d.skipLF = false
			if d.buf[d.pos] == '\n' {
				d.pos++
				d.size++
			}
		}
		if d.pos < d.end {
			if i := d.lineEnd(); i < d.end {
				line := d.buf[d.pos:i]
				if len(d.line) > 0 {
					d.line, d.joined = append(d.line, line...), true
					line = d.line
				}
				d.skipLF, d.pos = d.buf[i] == '\r', i+1
				if d.size += len(line) + 1; d.size > d.max {
					return d.tooLarge()
				}
				if !d.started {
					d.started = true
					line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
				}
				return line, true
			}
			d.line = append(d.line, d.buf[d.pos:d.end]...)
			d.pos = d.end
			if d.size+len(d.line) > d.max {
				return d.tooLarge()
			}
		}
		if d.err != nil {
			return nil, false
		}
		d.fill()
	}
}

// tooLarge stops the decoder at an event over the limit.
func (d *Decoder) tooLarge() ([]byte, bool) {
	d.err, d.pos = ErrTooLarge, d.end
	return nil, false
}

// lineEnd returns the index of the first CR or LF in buf[pos:end], or end. Each search result
// is kept until pos passes it, so each byte is searched once for each of the two.
func (d *Decoder) lineEnd() int {
	if d.lf < d.pos {
		d.lf = d.pos + indexOrLen(d.buf[d.pos:d.end], '\n')
	}
	if d.cr < d.pos {
		d.cr = d.pos + indexOrLen(d.buf[d.pos:d.end], '\r')
	}
	return min(d.lf, d.cr)
}

func indexOrLen(b []byte, c byte) int {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return i
	}
	return len(b)
}

// fill reads once from the body into the empty read buffer.
func (d *Decoder) fill() {
	if d.buf == nil {
		d.buf = make([]byte, ReadSize)
	}
	n, err := d.r.Read(d.buf)
	d.pos, d.end, d.lf, d.cr = 0, n, -1, -1
	d.total += int64(n)
	switch {
	case err != nil:
		d.err = err
	case n == 0:
		if d.empties++; d.empties > 100 {
			d.err = io.ErrNoProgress
		}
	default:
		d.empties = 0
	}
}

// Read returns how many bytes were read from the body.
func (d *Decoder) Read() int64 { return d.total }

// Pending returns how many bytes of an unfinished block were read: the block that the end of
// the body cut off. Blocks without data and comments count too.
func (d *Decoder) Pending() int { return d.size + len(d.line) + d.end - d.pos }

// Err returns the error Next stopped with, or nil.
func (d *Decoder) Err() error { return d.err }

// Release lets go of the buffers: the decoder reads no more, and Next returns io.EOF.
func (d *Decoder) Release() {
	d.buf, d.line, d.typ, d.data = nil, nil, nil, nil
	d.pos, d.end, d.size = 0, 0, 0
	if d.err == nil {
		d.err = io.EOF
	}
}

// shrink empties b for reuse, or lets it go when a large event left it large.
func shrink(b []byte) []byte {
	if cap(b) > keepCap {
		return nil
	}
	return b[:0]
}

// valid returns b decoded as UTF-8: each maximal invalid subpart is replaced by U+FFFD, as the
// WHATWG decoder does. Line ends, colons and spaces are ASCII, which ends any invalid subpart,
// so decoding a field value alone gives what decoding the whole stream would.
func valid(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out, i = append(out, b[i:i+n]...), i+n
			continue
		}
		out, i = append(out, "\uFFFD"...), i+invalidLen(b[i:])
	}
	return out
}

// invalidLen returns the length of the maximal subpart at the start of b, which is not valid
// UTF-8: the longest start of a well-formed sequence, or 1. Go's decoder accepts the same
// sequences as the WHATWG one, but skips one byte per error.
func invalidLen(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF)
	var need int
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b) && b[n] >= lo && b[n] <= hi; n++ {
		lo, hi = 0x80, 0xBF
	}
	return n
}
