"""The parse stage: untrusted bytes (JSON, CSV, multipart) into tables and arrays."""
