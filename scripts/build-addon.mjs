console.log("addon: placeholder")
