"""Printers that lpfilter can talk to: a JetDirect socket printer and an FTP print server."""
