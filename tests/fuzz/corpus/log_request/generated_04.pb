S
+userId-568a9b0b-1a2c-45ec-84e5-b8b147ef718b$879b5eac-fc8e-4e5b-b10c-27e19709f240À±Ç´Î.À±Ç´Î.Ê€À±Ç´Î.À±Ç´Î.2$6be3d968-d276-4929-a9df-adbf31debfc9:$11ae12bd-fbb6-4e59-b708-9b88a794ccc6BSearchHb—
%https://www.mymarket.com/search?shoesÆ
ˆMozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.125 Mobile Safari/537.369
Chromium88
Google Chrome88
;Not A Brand99%https://www.google.com/search?q=shoes