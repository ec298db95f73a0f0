-- What each webhook attempt exchanged (issue 17): the start of the receiver's answer (at most
-- 4 KiB, invalid UTF-8 replaced) and the request headers as sent (a JSON object, lower-case
-- names: content type, user agent, the signature headers). Neither holds a secret: the
-- signatures are HMACs of the body, which the receiver can compute itself.
ALTER TABLE webhook_attempts ADD COLUMN response_body TEXT;
ALTER TABLE webhook_attempts ADD COLUMN request_headers TEXT;
