S
+userId-568a9b0b-1a2c-45ec-84e5-b8b147ef718b$879b5eac-fc8e-4e5b-b10c-27e19709f240ةǴ�.ةǴ�.BHةǴ�.ةǴ�.2$9428c704-5c5f-4a1d-937e-50f566b60829BPERSONALIZE_V1H