S
+userId-568a9b0b-1a2c-45ec-84e5-b8b147ef718b$879b5eac-fc8e-4e5b-b10c-27e19709f240´µÇ´Î.´µÇ´Î.r=´µÇ´Î.´µÇ´Î.2$f602fed5-2786-4b0b-ae26-ba7ac795c0edbi-1-1