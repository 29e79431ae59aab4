package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

// CertFiles is a certificate and key read from files, read again by
// Reload (SIGHUP) without dropping connections: each handshake takes the
// current pair.
type CertFiles struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadTLS reads a certificate and key for client connections; the
// returned CertFiles reloads them.
func LoadTLS(certFile, keyFile string) (*tls.Config, *CertFiles, error) {
	cf := &CertFiles{certFile: certFile, keyFile: keyFile}
	if err := cf.Reload(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return cf.cur.Load(), nil
	}}
	return cfg, cf, nil
}

// Reload reads the files again; on error the previous pair stays.
func (cf *CertFiles) Reload() error {
	cert, err := tls.LoadX509KeyPair(cf.certFile, cf.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", cf.certFile, cf.keyFile, err)
	}
	cf.cur.Store(&cert)
	return nil
}

// SelfSignedTLS makes a throwaway certificate for development: clients can
// connect with sslmode=require (which does not verify the certificate).
func SelfSignedTLS(hosts ...string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tenantproxy development"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range append(hosts, "localhost", "127.0.0.1", "::1") {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
