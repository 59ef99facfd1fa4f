// The console service's entry point; the server, the page and the data it reads are being built (issue 18).
export {};
