S
+userId-568a9b0b-1a2c-45ec-84e5-b8b147ef718b$879b5eac-fc8e-4e5b-b10c-27e19709f240¨¹Ç´Î.¨¹Ç´Î.º¨¹Ç´Î.¨¹Ç´Î.*
	abcd-efgh