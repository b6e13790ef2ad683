package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// Request is one admin request on the wire.
type Request struct {
	Op       string          `json:"op"` // user.add, user.passwd, user.del, user.list, user.set, deliver, check, device.list, device.forget, device.add, device.revoke, user.quota, user.setquota, device.setup, alias.add, alias.del, alias.list, queue.list, queue.show, queue.retry, queue.drop, backup, restore, undelete, import, export, dkim.keygen, dkim.list, dkim.delete
	Name     string          `json:"name,omitempty"`
	Password string          `json:"password,omitempty"`
	Key      string          `json:"key,omitempty"`
	Value    string          `json:"value,omitempty"`
	Delivery *DeliverRequest `json:"delivery,omitempty"`
	Device   string          `json:"device,omitempty"`
	Quota    *store.Quota    `json:"quota,omitempty"`
	// Targets are the accounts of alias.add and alias.del (Name is the
	// alias; for alias.list the filter).
	Targets []string `json:"targets,omitempty"`
	// Selection is what a restore brings back (Name is the backup).
	Selection *backup.Selection `json:"selection,omitempty"`
	// Undelete is what undelete lists or brings back.
	Undelete *backup.UndeleteRequest `json:"undelete,omitempty"`
	// Import and Export are what import and export do.
	Import *backup.ImportRequest `json:"import,omitempty"`
	Export *backup.ExportRequest `json:"export,omitempty"`
	// Selector is the DKIM selector of dkim.keygen and dkim.delete (Name
	// is the domain).
	Selector string `json:"selector,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	// Error and Code describe a failure of the whole request.
	Error    string          `json:"error,omitempty"`
	Code     string          `json:"code,omitempty"`
	Users    []User          `json:"users,omitempty"`
	Problems []store.Problem `json:"problems,omitempty"`
	Delivery *DeliverResult  `json:"delivery,omitempty"`
	Devices  []Device        `json:"devices,omitempty"`
	// NewDevice answers device.add and device.setup.
	NewDevice *NewDevice   `json:"new_device,omitempty"`
	Usage     *store.Usage `json:"usage,omitempty"`
	// Alias answers alias.add and alias.del (nil: the alias is gone);
	// Aliases alias.list.
	Alias   *Alias  `json:"alias,omitempty"`
	Aliases []Alias `json:"aliases,omitempty"`
	// Backup answers backup, Restore restore.
	Backup  *BackupResult         `json:"backup,omitempty"`
	Restore *backup.PartialResult `json:"restore,omitempty"`
	// Undeleted answers undelete.
	Undeleted *backup.UndeleteResult `json:"undeleted,omitempty"`
	// Imported answers import, Exported export.
	Imported *backup.ImportResult `json:"imported,omitempty"`
	Exported *backup.ExportResult `json:"exported,omitempty"`
	// Queue answers queue.list and queue.show; Count queue.retry.
	Queue []QueueEntry `json:"queue,omitempty"`
	Count int          `json:"count,omitempty"`
	// DKIMKeys answers dkim.keygen, dkim.list and dkim.delete.
	DKIMKeys []DKIMKey `json:"dkim_keys,omitempty"`
}

// maxRequestLine bounds the JSON request line.
const maxRequestLine = 64 << 10

// Server serves API on the admin socket.
type Server struct {
	api API
	ns  *netserve.Server
	// allow decides which users may use the socket, by the peer's user id
	// (SO_PEERCRED); tests replace it.
	allow func(uid uint32) bool
}

// NewServer returns a Server for api. Only processes of the user the
// server runs as, and of root, may use it.
func NewServer(api API, log *slog.Logger) *Server {
	self := uint32(os.Geteuid())
	s := &Server{api: api, allow: func(uid uint32) bool { return peerAllowed(uid, self) }}
	s.ns = netserve.NewServer(netserve.ServerOptions{
		Options: netserve.Options{Proto: "admin", Logger: log},
		Handler: s.handle,
	})
	return s
}

// Listen creates the admin socket in dataDir with mode 0600.
func Listen(dataDir string) (net.Listener, error) {
	path := filepath.Join(dataDir, SocketName)
	// The caller holds the store lock, so a socket file here is stale.
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// Serve serves ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.ns.Serve(ln) }

// Shutdown stops the server, letting requests in progress finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.ns.Shutdown(ctx) }

func (s *Server) handle(conn net.Conn, tc *netserve.Conn) {
	tc.SetBusy(true) // one request per connection: let it finish
	defer tc.SetBusy(false)
	r := bufio.NewReaderSize(conn, 4096)
	line, err := readLine(r)
	if err != nil {
		writeResponse(conn, &Response{Error: "bad request: " + err.Error(), Code: "bad_request"})
		return
	}
	// The socket is 0600, but its mode is not all: it is briefly wider
	// while it is created, and a data directory can be copied or its
	// modes changed. The kernel's word on who is calling is (the request
	// line is read first so that the refusal reaches the client).
	cred, err := peerCred(tc.Conn)
	if err != nil || !s.allow(cred.Uid) {
		resp := &Response{Error: "permission denied: the admin socket serves only the user postfach runs as, and root", Code: "forbidden"}
		if err != nil {
			tc.Logger().Warn("admin socket: refused a client whose user is unknown", "err", err)
		} else {
			tc.Logger().Warn("admin socket: refused a client of another user", "uid", cred.Uid, "pid", cred.Pid, "server_uid", os.Geteuid())
			resp.Error = fmt.Sprintf("permission denied: the admin socket serves only the user postfach runs as (uid %d) and root, not uid %d", os.Geteuid(), cred.Uid)
		}
		writeResponse(conn, resp)
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(conn, &Response{Error: "bad request: " + err.Error(), Code: "bad_request"})
		return
	}
	log := tc.Logger().With("op", req.Op)
	ctx := context.Background()
	resp := &Response{}
	var opErr error
	switch req.Op {
	case "user.add":
		opErr = s.api.UserAdd(ctx, req.Name, req.Password)
	case "user.passwd":
		opErr = s.api.UserPasswd(ctx, req.Name, req.Password)
	case "user.del":
		opErr = s.api.UserDel(ctx, req.Name)
	case "user.list":
		resp.Users, opErr = s.api.UserList(ctx)
	case "user.set":
		opErr = s.api.UserSet(ctx, req.Name, req.Key, req.Value)
	case "user.quota":
		resp.Usage, opErr = s.api.UserQuota(ctx, req.Name)
	case "user.setquota":
		if req.Quota == nil {
			opErr = fmt.Errorf("%w: user.setquota without quota", ErrBadRequest)
			break
		}
		opErr = s.api.UserSetQuota(ctx, req.Name, *req.Quota)
	case "deliver":
		if req.Delivery == nil {
			opErr = fmt.Errorf("%w: deliver without delivery", ErrBadRequest)
			break
		}
		resp.Delivery, opErr = s.api.Deliver(ctx, *req.Delivery, r)
	case "check":
		resp.Problems, opErr = s.api.Check(ctx)
	case "device.list":
		resp.Devices, opErr = s.api.DeviceList(ctx, req.Name)
	case "device.forget":
		opErr = s.api.DeviceForget(ctx, req.Name, req.Device)
	case "device.add":
		resp.NewDevice, opErr = s.api.DeviceAdd(ctx, req.Name, req.Device)
	case "device.revoke":
		opErr = s.api.DeviceRevoke(ctx, req.Name, req.Device)
	case "device.setup":
		resp.NewDevice, opErr = s.api.DeviceSetup(ctx, req.Name, req.Device)
	case "alias.add":
		resp.Alias, opErr = s.api.AliasAdd(ctx, req.Name, req.Targets)
	case "alias.del":
		resp.Alias, opErr = s.api.AliasDel(ctx, req.Name, req.Targets)
	case "alias.list":
		resp.Aliases, opErr = s.api.AliasList(ctx, req.Name)
	case "backup":
		resp.Backup, opErr = s.api.Backup(ctx, req.Name)
	case "restore":
		if req.Selection == nil {
			opErr = fmt.Errorf("%w: restore without selection", ErrBadRequest)
			break
		}
		resp.Restore, opErr = s.api.Restore(ctx, req.Name, *req.Selection)
	case "undelete":
		if req.Undelete == nil {
			opErr = fmt.Errorf("%w: undelete without request", ErrBadRequest)
			break
		}
		resp.Undeleted, opErr = s.api.Undelete(ctx, *req.Undelete)
	case "import":
		if req.Import == nil {
			opErr = fmt.Errorf("%w: import without request", ErrBadRequest)
			break
		}
		resp.Imported, opErr = s.api.Import(ctx, *req.Import)
	case "export":
		if req.Export == nil {
			opErr = fmt.Errorf("%w: export without request", ErrBadRequest)
			break
		}
		resp.Exported, opErr = s.api.Export(ctx, *req.Export)
	case "queue.list":
		resp.Queue, opErr = s.api.QueueList(ctx)
	case "queue.show":
		var e *QueueEntry
		if e, opErr = s.api.QueueShow(ctx, req.Name); e != nil {
			resp.Queue = []QueueEntry{*e}
		}
	case "queue.retry":
		resp.Count, opErr = s.api.QueueRetry(ctx, req.Name)
	case "queue.drop":
		opErr = s.api.QueueDrop(ctx, req.Name)
	case "dkim.keygen":
		resp.DKIMKeys, opErr = s.api.DKIMKeygen(ctx, req.Name, req.Selector)
	case "dkim.list":
		resp.DKIMKeys, opErr = s.api.DKIMList(ctx, req.Name)
	case "dkim.delete":
		resp.DKIMKeys, opErr = s.api.DKIMDelete(ctx, req.Name, req.Selector)
	default:
		opErr = fmt.Errorf("%w: unknown op %q", ErrBadRequest, req.Op)
	}
	if opErr != nil {
		resp = &Response{Error: opErr.Error(), Code: ErrorCode(opErr)}
		log.Info("admin request failed", "name", req.Name, "err", opErr)
	} else {
		log.Info("admin request done", "name", req.Name)
	}
	writeResponse(conn, resp)
}

// peerAllowed reports whether a process of user peer may use the admin
// socket of a server running as user self: the same user, or root.
func peerAllowed(peer, self uint32) bool {
	return peer == self || peer == 0
}

// peerCred returns the credentials of the process at the other end of a
// unix socket connection, as the kernel recorded them when it connected
// (SO_PEERCRED).
func peerCred(c net.Conn) (*unix.Ucred, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("peer credentials: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred, nil
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > maxRequestLine {
			return nil, errors.New("request line too long")
		}
		if !isPrefix {
			return line, nil
		}
	}
}

func writeResponse(w io.Writer, resp *Response) {
	b, _ := json.Marshal(resp)
	_, _ = w.Write(append(b, '\n'))
}

// ErrNoServer is returned by Dial when no server answers on the socket.
var ErrNoServer = errors.New("no running server")

// Client implements API over the admin socket.
type Client struct {
	path string
}

var _ API = (*Client)(nil)

// Dial checks that a server answers on the admin socket in dataDir. It
// returns an error wrapping ErrNoServer when there is no socket or nobody
// listens on it.
func Dial(dataDir string) (*Client, error) {
	path := filepath.Join(dataDir, SocketName)
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: %v", ErrNoServer, err)
		}
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	c.Close()
	return &Client{path: path}, nil
}

// do sends req (and body, if not nil) and reads the response.
func (c *Client) do(ctx context.Context, req *Request, body io.Reader) (*Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	var sendErr error
	if body != nil {
		// The server may answer (and stop reading) before the whole body
		// was sent, for a message over the size limit: its answer still
		// counts.
		_, sendErr = io.Copy(conn, body)
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	line, err := readLine(bufio.NewReader(conn))
	if err != nil {
		if sendErr != nil {
			return nil, fmt.Errorf("send message: %w", sendErr)
		}
		return nil, fmt.Errorf("admin socket: no answer from the server: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("admin socket: bad answer: %w", err)
	}
	if resp.Code != "" {
		return &resp, ErrorFromCode(resp.Error, resp.Code)
	}
	return &resp, nil
}

// UserAdd implements API.
func (c *Client) UserAdd(ctx context.Context, name, password string) error {
	_, err := c.do(ctx, &Request{Op: "user.add", Name: name, Password: password}, nil)
	return err
}

// UserPasswd implements API.
func (c *Client) UserPasswd(ctx context.Context, name, password string) error {
	_, err := c.do(ctx, &Request{Op: "user.passwd", Name: name, Password: password}, nil)
	return err
}

// UserDel implements API.
func (c *Client) UserDel(ctx context.Context, name string) error {
	_, err := c.do(ctx, &Request{Op: "user.del", Name: name}, nil)
	return err
}

// UserList implements API.
func (c *Client) UserList(ctx context.Context) ([]User, error) {
	resp, err := c.do(ctx, &Request{Op: "user.list"}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Users, nil
}

// UserSet implements API.
func (c *Client) UserSet(ctx context.Context, name, key, value string) error {
	_, err := c.do(ctx, &Request{Op: "user.set", Name: name, Key: key, Value: value}, nil)
	return err
}

// Deliver implements API.
func (c *Client) Deliver(ctx context.Context, req DeliverRequest, body io.Reader) (*DeliverResult, error) {
	resp, err := c.do(ctx, &Request{Op: "deliver", Delivery: &req}, body)
	if err != nil {
		return nil, err
	}
	if resp.Delivery == nil {
		return nil, errors.New("admin socket: deliver answer without result")
	}
	return resp.Delivery, nil
}

// Check implements API.
func (c *Client) Check(ctx context.Context) ([]store.Problem, error) {
	resp, err := c.do(ctx, &Request{Op: "check"}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Problems, nil
}
