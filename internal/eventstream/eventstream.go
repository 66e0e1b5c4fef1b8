// Package eventstream decodes a text/event-stream body by the WHATWG rules
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
package eventstream

import (
	"bytes"
	"errors"
	"io"
	"unicode/utf8"
)

// readSize is the read buffer's size; keepCap the largest buffer kept for the next event.
const readSize, keepCap = 4096, 64 << 10

// ErrTooLarge is returned when a block (its lines and line ends) exceeds the decoder's limit.
var ErrTooLarge = errors.New("event too large")

// Decoder reads events from a body, only when Next needs more bytes, on Next's goroutine. It
// looks at each byte a bounded number of times however the body is split: to find the line
// end, to join a line split across reads, to copy the value, to check its UTF-8 (per read, and
// per line when the read is not valid).
type Decoder struct {
	r         io.Reader
	max, size int    // the limit of a block, and the bytes of this one so far
	buf       []byte // buf[pos:end] is read and not yet split into lines
	pos, end  int
	lf, cr    int    // the next LF and CR in buf[pos:end] (end: none); stale when below pos
	line      []byte // the start of a line that continues past buf
	skipLF    bool   // the last line ended with CR: a LF right after it is part of that line end
	started   bool   // the first line was read (the only place where a BOM is stripped)
	utf8      bool   // buf[:end] is valid UTF-8, and so is each line within it
	hasData   bool
	typ, data []byte
	total     int64
	err       error // the body's error (io.EOF at its end), or ErrTooLarge
	empties   int   // reads in a row that returned nothing
}

// NewDecoder returns a decoder of the events of r, each block at most max bytes.
func NewDecoder(r io.Reader, max int) *Decoder { return &Decoder{r: r, max: max} }

// Next returns the type and data of the next block with a data field, valid until the next
// call of Next or Release. At the end of the body it returns io.EOF, also when the body ended
// inside a block (see Read); any other error is the body's, or ErrTooLarge. There is no
// reconnection, so the id and retry fields have no effect.
func (d *Decoder) Next() (typ, data []byte, err error) {
	d.hasData, d.size = false, 0
	for {
		line, ok := d.readLine()
		switch {
		case !ok:
			return nil, nil, d.err
		case len(line) > 0:
			d.field(line)
		case d.hasData:
			typ, data = d.typ, d.data
			shrink(&d.typ) // a large one stays only with the caller
			shrink(&d.data)
			return typ, data, nil
		default:
			d.typ, d.size = d.typ[:0], 0 // a block without data is not dispatched
		}
	}
}

// field interprets one non-blank line.
func (d *Decoder) field(line []byte) {
	name, value := line, []byte(nil) // a line without colon is a name alone
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
	}
	if len(name) == 0 {
		return // a comment
	}
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "data":
		if d.hasData {
			d.data = append(d.data, '\n')
		}
		d.data, d.hasData = append(d.data, value...), true
	case "event":
		d.typ = append(d.typ[:0], value...)
	}
}

// readLine returns the next line without its line end, or false when the body has ended or
// failed or the block is over the limit.
func (d *Decoder) readLine() ([]byte, bool) {
	for {
		if d.skipLF && d.pos < d.end {
			d.skipLF = false
			if d.buf[d.pos] == '\n' {
				d.pos++ // a CRLF counts as one byte of the block
			}
		}
		if d.pos < d.end {
			if d.lf < d.pos {
				d.lf = d.pos + indexOrLen(d.buf[d.pos:d.end], '\n')
			}
			if d.cr < d.pos {
				d.cr = d.pos + indexOrLen(d.buf[d.pos:d.end], '\r')
			}
			if i := min(d.lf, d.cr); i < d.end {
				line := d.buf[d.pos:i]
				if len(d.line) > 0 {
					d.line = append(d.line, line...)
					line = d.line
				}
				d.skipLF, d.pos, d.size = d.buf[i] == '\r', i+1, d.size+len(line)+1
				if d.size > d.max {
					d.err, d.pos = ErrTooLarge, d.end
					return nil, false
				}
				if !d.started {
					d.started, line = true, bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
				}
				if !d.utf8 || len(d.line) > 0 {
					line = valid(line)
				}
				// A joined line stays valid until the next call; one longer than a read is let
				// go, so that after an event the decoder keeps its data and not a second copy.
				if d.line = d.line[:0]; cap(d.line) > readSize {
					d.line = nil
				}
				return line, true
			}
			d.line, d.pos = append(d.line, d.buf[d.pos:d.end]...), d.end
			if d.size+len(d.line) > d.max {
				d.err = ErrTooLarge
			}
		}
		if d.err != nil {
			return nil, false
		}
		d.fill()
	}
}

// fill reads once from the body into the read buffer, which holds nothing unread.
func (d *Decoder) fill() {
	if d.buf == nil {
		d.buf = make([]byte, readSize)
	}
	n, err := d.r.Read(d.buf)
	d.pos, d.end, d.lf, d.cr, d.total = 0, n, -1, -1, d.total+int64(n)
	d.utf8 = utf8.Valid(d.buf[:n])
	if n > 0 || err != nil {
		d.empties = 0
	} else if d.empties++; d.empties > 100 {
		err = io.ErrNoProgress
	}
	d.err = err
}

// Read returns how many bytes were read from the body, and how many of them belong to the
// unfinished block that the end of the body cut off.
func (d *Decoder) Read() (total int64, pending int) {
	return d.total, d.size + len(d.line) + d.end - d.pos
}

// Err returns the error Next stopped with, or nil.
func (d *Decoder) Err() error { return d.err }

// Release lets go of the buffers, once the decoder is no longer used.
func (d *Decoder) Release() {
	d.buf, d.line, d.typ, d.data, d.pos, d.end, d.size = nil, nil, nil, nil, 0, 0, 0
}

func indexOrLen(b []byte, c byte) int {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return i
	}
	return len(b)
}

// shrink empties *b (rewriting only its length), and lets go of it when it is large.
func shrink(b *[]byte) {
	if *b = (*b)[:0]; cap(*b) > keepCap {
		*b = nil
	}
}

// valid returns b decoded as UTF-8 by the WHATWG rule: U+FFFD for each maximal invalid subpart.
// A subpart ends at any ASCII byte, so decoding the lines alone equals decoding the stream.
func valid(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if r, n := utf8.DecodeRune(b[i:]); r != utf8.RuneError || n > 1 {
			out, i = append(out, b[i:i+n]...), i+n
		} else {
			out, i = append(out, "\uFFFD"...), i+invalidLen(b[i:])
		}
	}
	return out
}

// invalidLen returns the length of the maximal subpart at the start of b, which is not valid
// UTF-8: the longest start of a well-formed sequence, or 1. utf8.FullRune is false exactly for
// a start that is not yet a whole sequence; Go's decoder reports an error per byte instead.
func invalidLen(b []byte) int {
	n := 1
	for n < len(b) && !utf8.FullRune(b[:n+1]) {
		n++
	}
	return n
}
